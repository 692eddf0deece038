//! The built-in fact set, gathered with one remote script.
