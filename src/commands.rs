//! The subcommands behind the command line: `apply`, `validate` and `inventory`.
//!
//! Each one checks all input before it contacts a host, prints user errors with
//! their location, and returns the process exit status.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value};

use crate::cli::{ApplyArgs, Format, InventoryArgs, ValidateArgs};
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::executor::{self, RunOptions};
use crate::inventory::Inventory;
use crate::playbook::{self, LoadOptions, Playbook, Task, TaskKind};
use crate::report::{JsonReporter, Redactor, Reporter, TextReporter};
use crate::secret::Secret;
use crate::transport::HostKeyPolicy;

pub const EXIT_OK: i32 = 0;
pub const EXIT_ERROR: i32 = 1;
pub const EXIT_CHANGED: i32 = 2;

/// Everything `apply` and `validate` load before contacting a host.
struct Loaded {
    inventory: Inventory,
    playbooks: Vec<Playbook>,
    extra_vars: Map<String, Value>,
}

/// Loads the inventory, extra vars and playbooks, collecting every error.
fn load_all(
    inventory_sources: &[String],
    playbook_paths: &[PathBuf],
    extra_vars: &[String],
) -> Result<Loaded, Diagnostics> {
    let mut diagnostics = Diagnostics::default();

    let mut vars = Map::new();
    for argument in extra_vars {
        match crate::vars::parse_extra_vars(argument) {
            Ok(parsed) => vars.extend(parsed),
            Err(error) => diagnostics.push(error),
        }
    }

    let mut inventory = if inventory_sources.is_empty() {
        Inventory::default()
    } else {
        match Inventory::load(inventory_sources) {
            Ok(inventory) => inventory,
            Err(errors) => {
                diagnostics.0.extend(errors.0);
                Inventory::default()
            }
        }
    };

    let options = LoadOptions {
        modules: crate::modules::registry(),
        roles_path: roles_path(),
    };
    let mut playbooks = Vec::new();
    for path in playbook_paths {
        if !path.exists() {
            diagnostics.push(Diagnostic::new(format!(
                "playbook `{}` not found",
                path.display()
            )));
            continue;
        }
        match playbook::load(path, &options) {
            Ok(loaded) => playbooks.push(loaded),
            Err(errors) => diagnostics.0.extend(errors.0),
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        if let Err(errors) = inventory.add_playbook_vars(dir) {
            diagnostics.0.extend(errors.0);
        }
    }

    if diagnostics.is_empty() {
        Ok(Loaded {
            inventory,
            playbooks,
            extra_vars: vars,
        })
    } else {
        Err(diagnostics)
    }
}

/// Roles folders from `VPSFORGE_ROLES_PATH` or `ANSIBLE_ROLES_PATH`, colon-separated.
fn roles_path() -> Vec<PathBuf> {
    std::env::var("VPSFORGE_ROLES_PATH")
        .or_else(|_| std::env::var("ANSIBLE_ROLES_PATH"))
        .map(|value| std::env::split_paths(&value).collect())
        .unwrap_or_default()
}

fn print_diagnostics(diagnostics: &Diagnostics) {
    eprint!("{}", diagnostics.render());
    let count = diagnostics.0.len();
    eprintln!(
        "\n{count} error{} found; no host was contacted",
        if count == 1 { "" } else { "s" }
    );
}

pub fn apply(args: &ApplyArgs) -> i32 {
    if args.inventory.is_empty() {
        eprintln!("error: no inventory given\n  = help: pass `-i inventory.yaml`, or `-i HOST,` for a single host");
        return EXIT_ERROR;
    }
    let loaded = match load_all(&args.inventory, &args.playbooks, &args.extra_vars) {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            return EXIT_ERROR;
        }
    };

    if let Some(limit) = &args.limit {
        match loaded.inventory.select(limit) {
            Ok(hosts) if !hosts.is_empty() => {}
            Ok(_) => {
                eprintln!("error: the limit `{limit}` matches no host in the inventory");
                return EXIT_ERROR;
            }
            Err(error) => {
                eprintln!(
                    "error: the limit `{limit}` matches no host in the inventory: {}",
                    error.message
                );
                return EXIT_ERROR;
            }
        }
    }

    let become_password = if args.ask_become_pass {
        if !std::io::stdin().is_terminal() {
            eprintln!("error: -K needs a terminal to ask for the sudo password\n  = help: set `ansible_become_password` in a vars file instead");
            return EXIT_ERROR;
        }
        match rpassword::prompt_password("BECOME password: ") {
            Ok(password) => Some(Secret::new(password)),
            Err(error) => {
                eprintln!("error: cannot read the sudo password: {error}");
                return EXIT_ERROR;
            }
        }
    } else {
        None
    };

    let options = RunOptions {
        check: args.check,
        diff: args.diff,
        limit: args.limit.clone(),
        tags: args.tags.clone(),
        skip_tags: args.skip_tags.clone(),
        extra_vars: loaded.extra_vars,
        forks: usize::from(args.forks),
        remote_user: args.user.clone(),
        r#become: args.r#become,
        become_password,
        host_key_policy: if args.accept_new_host_keys {
            HostKeyPolicy::AcceptNew
        } else {
            HostKeyPolicy::Strict
        },
        known_hosts: args.known_hosts.clone(),
        // Zero leaves the choice to the ssh config's ConnectTimeout, then the transport's default.
        connect_timeout: Duration::from_secs(args.timeout.unwrap_or(0)),
        verbose: args.verbose,
    };

    let redactor = Arc::new(Redactor::default());
    let reporter: Arc<dyn Reporter> = match args.format {
        Format::Text => Arc::new(TextReporter::new(redactor.clone(), args.diff)),
        Format::Json => Arc::new(JsonReporter::new(
            redactor.clone(),
            args.diff,
            Box::new(std::io::stdout()),
        )),
    };

    raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return EXIT_ERROR;
        }
    };
    let summary = runtime.block_on(executor::run(
        &loaded.playbooks,
        &loaded.inventory,
        &options,
        reporter,
        redactor,
    ));

    if summary.failed() {
        EXIT_ERROR
    } else if args.detailed_exitcode && summary.changed() {
        EXIT_CHANGED
    } else {
        EXIT_OK
    }
}

/// Raises the soft limit of open files to the hard limit. Every host keeps its SSH
/// connection open until the run ends, so the usual soft limit of 1024 would make
/// the hosts after about the thousandth unreachable.
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes only the struct it is given, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, "failed to read the open files limit");
        return;
    }
    if limit.rlim_cur >= limit.rlim_max {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit only reads the struct it is given.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        let error = std::io::Error::last_os_error();
        tracing::debug!(%error, soft = limit.rlim_cur, hard = limit.rlim_max, "failed to raise the open files limit");
    }
}

pub fn validate(args: &ValidateArgs) -> i32 {
    match load_all(&args.inventory, &args.playbooks, &args.extra_vars) {
        Ok(loaded) => {
            let plays: usize = loaded.playbooks.iter().map(|p| p.plays.len()).sum();
            let tasks: usize = loaded
                .playbooks
                .iter()
                .flat_map(|p| &p.plays)
                .map(|play| {
                    play.sections
                        .iter()
                        .map(|s| count_tasks(&s.tasks))
                        .sum::<usize>()
                        + count_tasks(&play.handlers)
                })
                .sum();
            println!(
                "ok: {} playbook{}, {plays} play{}, {tasks} task{} checked",
                loaded.playbooks.len(),
                plural(loaded.playbooks.len()),
                plural(plays),
                plural(tasks)
            );
            EXIT_OK
        }
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            EXIT_ERROR
        }
    }
}

fn count_tasks(tasks: &[Task]) -> usize {
    tasks
        .iter()
        .map(|task| match &task.kind {
            TaskKind::Block {
                block,
                rescue,
                always,
            } => count_tasks(block) + count_tasks(rescue) + count_tasks(always),
            _ => 1,
        })
        .sum()
}

fn plural(count: usize) -> &'static str {
    if count == 1 {
        ""
    } else {
        "s"
    }
}

pub fn inventory(args: &InventoryArgs) -> i32 {
    let inventory = match Inventory::load(&args.inventory) {
        Ok(inventory) => inventory,
        Err(diagnostics) => {
            eprint!("{}", diagnostics.render());
            return EXIT_ERROR;
        }
    };
    let output = if let Some(host) = &args.host {
        if !inventory.hosts.iter().any(|h| &h.name == host) {
            eprintln!("error: host `{host}` is not in the inventory");
            return EXIT_ERROR;
        }
        Value::Object(inventory.host_vars(host))
    } else {
        inventory.to_list_json()
    };
    match serde_json::to_string_pretty(&output) {
        Ok(text) => {
            use std::io::Write as _;
            // A closed pipe (`| head`) is not an error worth a panic.
            let _ = writeln!(std::io::stdout(), "{text}");
            EXIT_OK
        }
        Err(error) => {
            eprintln!("error: cannot print the inventory: {error}");
            EXIT_ERROR
        }
    }
}
