//! Exports, once for both guest kernels, how a kernel is linked against this runtime: its linker
//! script and the kernel's load address from the platform crate. A kernel's build script reads
//! them from `DEP_GUEST_RT_LINK_ARGS` (arguments separated by `;`).
use std::env;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let manifest =
        PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"));
    let script = manifest.join("link.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!(
        "cargo:link_args=-T{};--defsym=KERNEL_BASE={:#x}",
        script.display(),
        sis_platform::layout::ipa::KERNEL_BASE
    );
}
