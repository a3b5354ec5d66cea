//! Links the kernel with the guest runtime's linker script at the platform's kernel address
//! (only for the bare-metal target; the host build is an empty program).
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    if env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("none") {
        return;
    }
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let script = manifest.join("../guest-rt/link.ld");
    let script = script
        .canonicalize()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rustc-link-arg-bins=-T{}", script.display());
    println!(
        "cargo:rustc-link-arg-bins=--defsym=KERNEL_BASE={:#x}",
        sis_platform::layout::ipa::KERNEL_BASE
    );
}
