//! The hardware edge of the hypervisor (aarch64, EL2). Everything here runs only on the target.

pub mod audit;
pub mod boot;
pub mod console_in;
pub mod devices;
pub mod dtb;
pub mod el1;
pub mod gic;
pub mod hypercall;
pub mod lr;
pub mod mmio;
pub mod mmu;
pub mod pci;
pub mod print;
pub mod ram;
pub mod smmu;
pub mod sysreg;
pub mod uart;
pub mod vcpu;
pub mod vm;

use core::sync::atomic::{AtomicU64, Ordering};

use aarch64_cpu::registers::MPIDR_EL1;
use sis_platform::layout::{irq, phys};
use sis_platform::partition::{Access, PARTITIONS, SYSTEM};
use tock_registers::interfaces::Readable;

use crate::hvprintln;
use hypervisor::stage2::{MemKind, Stage2, Table};

/// Stage-2 tables per VM.
const S2_TABLES: usize = 16;
static S2_POOLS: [spin::Mutex<[Table; S2_TABLES]>; PARTITIONS.len()] =
    [const { spin::Mutex::new([Table::EMPTY; S2_TABLES]) }; PARTITIONS.len()];
static S2_ROOTS: [AtomicU64; PARTITIONS.len()] = [const { AtomicU64::new(0) }; PARTITIONS.len()];

/// The physical core this code runs on.
pub fn this_core() -> usize {
    (MPIDR_EL1.get() & 0xFF) as usize
}

/// Root of a VM's stage-2 tables.
pub fn stage2_root(vm: usize) -> u64 {
    S2_ROOTS[vm].load(Ordering::Acquire)
}

/// Builds every VM's stage-2 tables from the partition table.
fn build_stage2() {
    for (id, vm) in PARTITIONS.iter().enumerate() {
        let mut pool = S2_POOLS[id].lock();
        let mut s2 = Stage2::new(&mut pool[..]);
        if let Err((ipa, e)) = s2.map_partition(vm) {
            panic!("stage-2 for vm {}: cannot map {ipa:#x}: {e:?}", vm.name);
        }
        // The BARs of its PCI functions, where the hypervisor put them (guest-physical =
        // physical), device memory.
        pci::for_each_bar(id, |pa, size| {
            if let Err(e) = s2.map(pa, pa, size, MemKind::Device, Access::ReadWrite) {
                panic!("stage-2 for vm {}: cannot map BAR {pa:#x}: {e:?}", vm.name);
            }
        });
        S2_ROOTS[id].store(s2.root_addr(), Ordering::Release);
    }
}

/// Rust entry of every core (from `boot.rs`).
#[unsafe(no_mangle)]
extern "C" fn hv_entry(core: usize) -> ! {
    if core == 0 {
        let map = mmu::build();
        mmu::enable();
        boot_primary(&map);
    } else {
        mmu::enable();
        gic::init_cpu(core);
    }
    vcpu::run(core)
}

fn boot_primary(map: &hypervisor::el2map::Summary) {
    hvprintln!(
        "SIS hypervisor: EL2, {} VMs, {} cores",
        PARTITIONS.len(),
        phys::NUM_CORES
    );
    hvprintln!(
        "EL2 map: W^X checked: text {} KiB RX, {} KiB R, {} MiB RW+XN, {} MiB device XN; WXN on",
        map.text >> 10,
        map.read_only >> 10,
        map.read_write >> 20,
        map.device >> 20
    );
    let devices_where_expected = dtb::check(phys::DTB_ADDR);
    gic::init_distributor();
    gic::init_cpu(0);
    gic::enable_spi(irq::UART);
    uart::init();
    devices::init(devices_where_expected);
    build_stage2();
    audit::init();
    for core in 1..phys::NUM_CORES {
        let entry = boot::_secondary_entry as *const () as u64;
        if let Err(e) = smccc::psci::cpu_on::<smccc::Smc>(core as u64, entry, core as u64) {
            hvprintln!("core {core}: PSCI CPU_ON failed: {e:?}");
        }
    }
    for vm in vm::VMS.iter() {
        match vm::start(vm) {
            Ok(()) => hvprintln!(
                "vm {}: cores {:?}, {} MiB RAM at {:#x}, started",
                vm.cfg.name,
                vm.cfg.cores,
                vm.cfg.ram.size >> 20,
                vm.cfg.ram.pa
            ),
            Err(e) => hvprintln!("vm {}: {e}", vm.cfg.name),
        }
    }
    hvprintln!("console: {}", SYSTEM.console_keys("Ctrl-A "));
    console_in::monitor_prompt();
}

/// A synchronous exception or interrupt taken at EL2 itself: a hypervisor bug.
#[unsafe(no_mangle)]
extern "C" fn hv_fault(kind: u64, esr: u64, elr: u64, far: u64) -> ! {
    print::emergency(format_args!(
        "\n[hv] HYPERVISOR FAULT on core {}: vector {kind}, {}, elr {elr:#x}, far {far:#x}\n",
        this_core(),
        sis_regs::esr::Esr(esr)
    ));
    loop {
        aarch64_cpu::asm::wfe();
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo) -> ! {
    print::emergency(format_args!(
        "\n[hv] HYPERVISOR PANIC on core {}: {info}\n",
        this_core()
    ));
    loop {
        aarch64_cpu::asm::wfe();
    }
}
