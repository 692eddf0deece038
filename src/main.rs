use clap::Parser;

use vpsforge::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();

    let result = match &cli.command {
        Command::Lab(args) => vpsforge::lab::run(args),
        // NOTE: only `lab` is dispatched here so far; the other commands are wired
        // up by their owners.
        _ => Err(anyhow::anyhow!(
            "this command is not available in this build"
        )),
    };
    match result {
        Ok(code) => std::process::exit(code),
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::exit(1);
        }
    }
}
