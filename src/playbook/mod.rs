//! Playbooks, plays, tasks, blocks and roles, checked before any host is contacted.
