//! Inventories in Ansible's YAML and INI formats, with `group_vars/` and `host_vars/`.
