//! The `kiln` command: the CLI lives in the binary so the library never prints.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
