//! vpsforge: apply Ansible-style playbooks to hosts over SSH.
//!
//! The data flows through the modules in this order: `inventory` and `playbook`
//! load and check the input (through `yaml`, reporting with `diagnostic`),
//! `vars` and `template` resolve variables and templates per host, `executor`
//! plans each task against the host state that `modules` probe through
//! `transport`, and `report` prints the results. See ARCHITECTURE.md.

pub mod cli;
pub mod commands;
pub mod diagnostic;
pub mod executor;
pub mod facts;
pub mod inventory;
pub mod lab;
pub mod modules;
pub mod playbook;
pub mod report;
pub mod secret;
pub mod template;
pub mod transport;
pub mod vars;
pub mod yaml;
