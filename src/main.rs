//! The `bulletin` binary: arguments in, exit code out. Everything else is the library.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    bulletin::cli::main()
}
