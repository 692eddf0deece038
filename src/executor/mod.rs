//! Runs plays across hosts: Ansible's linear strategy, handlers, loops, check mode.
