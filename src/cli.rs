//! Command-line arguments, as clap parses them. `main.rs` hands them to the library.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

const EXIT_CODES: &str = "\
Exit status:
  0  success: every host converged (or, with --check, nothing failed)
  1  error: a host failed or was unreachable, or the input is invalid
  2  with --detailed-exitcode only: success, and something changed
     (with --check: something would change)";

#[derive(Debug, Parser)]
#[command(name = "vpsforge", version, about = "Apply Ansible-style playbooks to hosts over SSH", after_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Converge hosts to the state the playbooks describe
    #[command(after_help = EXIT_CODES)]
    Apply(ApplyArgs),
    /// Check playbooks and inventory without contacting any host; reports every error
    Validate(ValidateArgs),
    /// Show the hosts, groups and merged variables of an inventory
    Inventory(InventoryArgs),
    /// Start and stop throwaway Debian hosts on this machine (needs root and systemd-nspawn)
    Lab(LabArgs),
}

#[derive(Debug, Args)]
pub struct ApplyArgs {
    /// Inventory file (YAML or INI), or a comma-separated host list ending in a comma
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY")]
    pub inventory: Vec<String>,
    /// Playbook files, applied in order
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    /// Predict changes without making them
    #[arg(short = 'C', long)]
    pub check: bool,
    /// Show the difference for each changed file, line, block or entry
    #[arg(short = 'D', long)]
    pub diff: bool,
    /// Only run on hosts matching this pattern (`web`, `h1,h2`, `all:!db`)
    #[arg(short = 'l', long, value_name = "PATTERN")]
    pub limit: Option<String>,
    /// Only run tasks and roles with these tags (comma-separated)
    #[arg(short = 't', long, value_delimiter = ',', value_name = "TAGS")]
    pub tags: Vec<String>,
    /// Skip tasks and roles with these tags (comma-separated)
    #[arg(long, value_delimiter = ',', value_name = "TAGS")]
    pub skip_tags: Vec<String>,
    /// Set variables: `KEY=VALUE ...`, a YAML or JSON mapping, or `@file.yaml`; highest precedence
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
    /// Number of hosts worked on in parallel
    #[arg(short = 'f', long, default_value_t = 20, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub forks: u16,
    /// Remote user, unless the inventory sets `ansible_user`
    #[arg(short = 'u', long, value_name = "USER")]
    pub user: Option<String>,
    /// Run tasks as root through sudo
    #[arg(short = 'b', long = "become")]
    pub r#become: bool,
    /// Prompt for the sudo password
    #[arg(short = 'K', long = "ask-become-pass")]
    pub ask_become_pass: bool,
    /// Record unknown host keys in known_hosts instead of rejecting them (changed keys are still rejected)
    #[arg(long)]
    pub accept_new_host_keys: bool,
    /// Extra known_hosts file, read before ~/.ssh/known_hosts
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Vec<PathBuf>,
    /// SSH connect timeout in seconds [default: the ssh config's ConnectTimeout, else 10]
    #[arg(long, value_name = "SECONDS")]
    pub timeout: Option<u64>,
    /// Output format
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Exit with 2 when the run succeeded and something changed (or would change)
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// More output: -v and -vv show `debug` tasks that set `verbosity`; -vvv adds debug logs on standard error
    #[arg(short = 'v', long = "verbose", action = ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Inventory file, to also check host patterns and inventory syntax
    #[arg(short = 'i', long = "inventory", value_name = "INVENTORY")]
    pub inventory: Vec<String>,
    #[arg(required = true, value_name = "PLAYBOOK")]
    pub playbooks: Vec<PathBuf>,
    /// Variables, as for `apply`
    #[arg(short = 'e', long = "extra-vars", value_name = "VARS")]
    pub extra_vars: Vec<String>,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    #[arg(
        short = 'i',
        long = "inventory",
        required = true,
        value_name = "INVENTORY"
    )]
    pub inventory: Vec<String>,
    /// Print every group and host with its variables, as JSON
    #[arg(long, conflicts_with = "host")]
    pub list: bool,
    /// Print the merged variables of one host, as JSON
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
}

#[derive(Debug, Args)]
pub struct LabArgs {
    /// Lab name: each lab has its own bridge, addresses and state folder
    #[arg(long, global = true, default_value = "default", value_name = "NAME")]
    pub name: String,
    #[command(subcommand)]
    pub command: LabCommand,
}

#[derive(Debug, Subcommand)]
pub enum LabCommand {
    /// Boot hosts h1..hN (hosts already up stay up)
    Up {
        #[arg(value_name = "N")]
        count: usize,
        /// Debian release of the hosts
        #[arg(long, value_enum, default_value_t = Release::Bookworm)]
        release: Release,
    },
    /// Stop every host and helper process, remove mounts and the bridge
    Down,
    /// Show the hosts and helpers that are running
    Status,
    /// Open a shell on a host, or run CMD there
    Ssh {
        host: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Start a local ACME CA (pebble) and its DNS server for certbot on the hosts
    Acme,
    /// Put a relay that delays each direction by MS milliseconds in front of a host's SSH port
    Latency {
        host: String,
        #[arg(value_name = "MS")]
        delay_ms: u64,
    },
    /// Boot one host, start the ACME CA and apply playbooks/site.yaml to it
    Demo,
    /// Run one host's systemd-nspawn, booting it again when it exits with 133 (reboot)
    #[command(hide = true)]
    Supervise {
        /// Host name inside the lab (`h1`)
        host: String,
    },
    /// Forward TCP from LISTEN to TARGET, holding each chunk for MS milliseconds
    #[command(hide = true)]
    Relay {
        listen: String,
        target: String,
        #[arg(value_name = "MS")]
        delay_ms: u64,
        /// File that receives the bound address once the relay accepts connections
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Release {
    Bookworm,
    Trixie,
}

impl Release {
    pub fn codename(self) -> &'static str {
        match self {
            Release::Bookworm => "bookworm",
            Release::Trixie => "trixie",
        }
    }
}
