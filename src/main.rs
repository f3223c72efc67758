//! The `weir` command-line program. Not yet implemented; see the README.

fn main() -> std::process::ExitCode {
    eprintln!("weir: the command-line program is not built yet (see README.md)");
    std::process::ExitCode::from(2)
}
