//! `luavirt`: virsh-like commands over luavirt's host API.

mod cli;

use clap::FromArgMatches;

fn main() {
    let matches = cli::help::command().get_matches();
    let args = cli::args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli::logging::init(args.verbosity);
    std::process::exit(cli::run(args));
}
