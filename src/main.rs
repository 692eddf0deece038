use clap::Parser;

fn main() {
    let cli = vpsforge::cli::Cli::parse();
    let _ = cli;
}
