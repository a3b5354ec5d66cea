//! Links the hypervisor at its load address and embeds the guest images it boots.
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=link.ld");
    println!("cargo:rerun-if-env-changed=SIS_GUEST_DIR");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    println!(
        "cargo:rustc-link-arg-bins=-T{}",
        dir.join("link.ld").display()
    );
    // Guest kernels are built first (scripts/build.sh) for aarch64-unknown-none.
    let guests = env::var("SIS_GUEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| dir.join("../target/image/aarch64-unknown-none/release"));
    for name in ["guest-ctl", "guest-llm"] {
        let path = guests.join(name);
        if !path.exists() {
            panic!(
                "guest image {} not found: build the guests first (scripts/build.sh), or set \
                 SIS_GUEST_DIR",
                path.display()
            );
        }
        println!("cargo:rerun-if-changed={}", path.display());
        let var = format!(
            "SIS_IMAGE_{}",
            name.trim_start_matches("guest-").to_uppercase()
        );
        println!("cargo:rustc-env={var}={}", path.display());
    }
}
