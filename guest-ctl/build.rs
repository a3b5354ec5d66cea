//! Links the kernel as the guest runtime says (its build script exports the linker script and
//! the load address); only for the bare-metal target: the host build is an empty program.
fn main() {
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("none") {
        let args = std::env::var("DEP_GUEST_RT_LINK_ARGS").expect("guest-rt exports link args");
        args.split(';')
            .for_each(|a| println!("cargo:rustc-link-arg-bins={a}"));
    }
}
