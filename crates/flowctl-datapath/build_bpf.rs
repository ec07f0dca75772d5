// Compiling eBPF C with clang, shared by the build scripts of
// flowctl-datapath and flowctl-bench (`include!`d by both).

/// Compiles `src` (eBPF C, headers from `include`) into the object `out`
/// with clang (`$CLANG`, else `clang`) and the flags of every flowctl eBPF
/// object; cargo rebuilds when `src` changes.
fn compile_bpf(src: &std::path::Path, include: &std::path::Path, out: &std::path::Path) -> Result<(), String> {
    println!("cargo:rerun-if-changed={}", src.display());
    let clang = std::env::var("CLANG").unwrap_or_else(|_| "clang".into());
    // linux/types.h pulls in asm/types.h, which Debian keeps under the multiarch dir.
    let multiarch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") | Err(_) => "x86_64-linux-gnu",
        Ok("aarch64") => "aarch64-linux-gnu",
        Ok(other) => return Err(format!("unsupported host architecture for the eBPF build: {other}")),
    };
    let status = std::process::Command::new(&clang)
        // v2, not v3: v3's 32-bit subregisters make clang spill 32-bit
        // halves into stack slots that held pointers, which the verifier
        // refuses to a loader without CAP_PERFMON. The 64-bit atomic
        // instructions the datapath uses (fetch, or, compare-and-swap;
        // Linux 5.12) need no v3.
        .args(["-O2", "-g", "-target", "bpf", "-mcpu=v2", "-Wall", "-Werror", "-c"])
        .arg(format!("-I/usr/include/{multiarch}"))
        .arg("-I")
        .arg(include)
        .arg(src)
        .arg("-o")
        .arg(out)
        .status()
        .map_err(|e| format!("cannot run {clang} to build {} ({e}); install clang and libbpf-dev", src.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{clang} failed to compile {}", src.display()))
    }
}

/// A directory cargo gives the build script in the environment variable `name`.
fn cargo_dir(name: &str) -> Result<std::path::PathBuf, String> {
    std::env::var_os(name)
        .map(std::path::PathBuf::from)
        .ok_or_else(|| format!("{name} is not set: run this build script through cargo"))
}

/// Runs a build script's body; its error fails the build with one line.
fn run(build: impl FnOnce() -> Result<(), String>) {
    if let Err(e) = build() {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
