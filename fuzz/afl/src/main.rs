//! AFL++ entry point: `weir-afl TARGET` runs one of `weir_fuzz::targets::ALL` in
//! AFL's persistent mode. The target bodies are the ones cargo-fuzz runs.

fn main() {
    let name = std::env::args().nth(1).unwrap_or_default();
    let Some(&(_, target)) = weir_fuzz::targets::ALL.iter().find(|(n, _)| *n == name) else {
        let names: Vec<&str> = weir_fuzz::targets::ALL.iter().map(|(n, _)| *n).collect();
        eprintln!("usage: weir-afl TARGET   (one of: {})", names.join(", "));
        std::process::exit(2);
    };
    afl::fuzz!(|data: &[u8]| target(data));
}
