//! Jinja templating and expressions, with Ansible's filters and tests.
//!
//! Built on minijinja with strict undefined behaviour: a missing variable is an
//! error that names it, never an empty string.
