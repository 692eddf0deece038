use clap::Parser;

use vpsforge::cli::{Cli, Command};

fn main() {
    // Usage errors exit with 1, because 2 means "changed" under --detailed-exitcode.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            std::process::exit(if error.use_stderr() { 1 } else { 0 });
        }
    };
    init_logging(&cli);
    let code = match &cli.command {
        Command::Apply(args) => vpsforge::commands::apply(args),
        Command::Validate(args) => vpsforge::commands::validate(args),
        Command::Inventory(args) => vpsforge::commands::inventory(args),
        Command::Lab(args) => match vpsforge::lab::run(args) {
            Ok(code) => code,
            Err(error) => {
                eprintln!("error: {error:#}");
                1
            }
        },
    };
    std::process::exit(code);
}

/// Sends logs to standard error: warnings by default, more with `-vvv` or `VPSFORGE_LOG`.
fn init_logging(cli: &Cli) {
    let verbose = match &cli.command {
        Command::Apply(args) => args.verbose,
        _ => 0,
    };
    let default = match verbose {
        0..=2 => "warn",
        3 => "vpsforge=debug",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VPSFORGE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .init();
}
