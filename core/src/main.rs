//! `luavirt`: virsh-like commands over luavirt's host API.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::args::Cli::parse();
    std::process::exit(cli::run(args));
}
