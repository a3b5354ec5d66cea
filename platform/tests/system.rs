//! Whole-system tables other than the one SIS runs: adding a third VM and moving guest-ctl off
//! core 0 are table edits that validation accepts, and what the rest of SIS derives from the
//! table (console keys, shared regions, channel peers and doorbells, images, the work core)
//! follows them.

use sis_platform::layout::{ipa, irq, phys};
use sis_platform::partition::{
    validate, Access, Channel, ConfigError, Mapping, SharedRegion, System, VmConfig, AUDIT,
    CHANNELS, MODEL, PARTITIONS, RING, SYSTEM, VM_CTL, VM_LLM,
};
use sis_platform::BootInfo;

const AUX: usize = 2;

/// A second ring, for the ctl-aux channel, right after the audit log.
const RING2: SharedRegion = SharedRegion {
    name: "ring2",
    pa: phys::AUDIT_BASE + phys::AUDIT_SIZE,
    size: phys::SHARED_SIZE,
};

fn map(r: &SharedRegion, at: u64, access: Access) -> Mapping {
    r.map(at, access)
}

fn leak<T>(v: Vec<T>) -> &'static [T] {
    Box::leak(v.into_boxed_slice())
}

/// SIS's table with a third VM, `aux`, on core 3 (guest-llm keeps cores 1-2), which guest-ctl
/// talks to through a ring of its own with doorbell 41.
fn three_vms() -> System {
    let ring = map(&RING, ipa::SHARED_BASE, Access::ReadWrite);
    let audit = map(&AUDIT, ipa::AUDIT_BASE, Access::ReadOnly);
    let mut ctl = PARTITIONS[VM_CTL];
    // guest-ctl sees the second ring just after the audit log.
    let ring2_ctl = map(
        &RING2,
        ipa::AUDIT_BASE + phys::AUDIT_SIZE,
        Access::ReadWrite,
    );
    ctl.regions = leak(vec![ring, audit, ring2_ctl]);
    let mut llm = PARTITIONS[VM_LLM];
    llm.cores = &[1, 2];
    let aux = VmConfig {
        name: "aux",
        console_key: b'3',
        tag: "[aux] ",
        cores: &[3],
        ram: Mapping {
            pa: 0x6800_0000,
            ipa: ipa::RAM_BASE,
            size: 0x0400_0000,
            access: Access::ReadWrite,
        },
        // aux's only ring is where a guest expects it.
        regions: leak(vec![
            map(&RING2, ipa::SHARED_BASE, Access::ReadWrite),
            audit,
        ]),
        devices: &[],
        irqs: &[],
        pci: &[],
        emulated: PARTITIONS[VM_LLM].emulated,
        image: "guest-aux",
    };
    System {
        vms: leak(vec![ctl, llm, aux]),
        shared: leak(vec![RING, AUDIT, MODEL, RING2]),
        channels: leak(vec![
            CHANNELS[0],
            Channel {
                requester: VM_CTL,
                responder: AUX,
                region: RING2.pa,
                doorbell: irq::DOORBELL + 1,
            },
        ]),
        ..SYSTEM
    }
}

#[test]
fn a_three_vm_table_validates_and_derives_its_consoles_regions_and_peers() {
    let sys = three_vms();
    assert_eq!(validate(&sys), Ok(()));

    // Console keys and tags: the monitor's, then one per VM.
    assert_eq!(
        sys.console_keys("").to_string(),
        "0 monitor, 1 ctl, 2 llm, 3 aux"
    );
    assert_eq!(
        sys.console_keys("Ctrl-A ").to_string(),
        "Ctrl-A 0 monitor, Ctrl-A 1 ctl, Ctrl-A 2 llm, Ctrl-A 3 aux"
    );
    assert_eq!(sys.vm_by_key(b'3'), Some(AUX));
    assert_eq!(sys.vm_by_key(b'4'), None);
    assert_eq!(sys.vm_by_name("aux"), Some(AUX));
    assert_eq!(sys.vms[AUX].tag, "[aux] ");

    // Shared regions: who maps what, with which rights.
    let sharers = |pa| sys.sharers(pa).collect::<Vec<_>>();
    assert_eq!(
        sharers(RING.pa),
        [(VM_CTL, Access::ReadWrite), (VM_LLM, Access::ReadWrite)]
    );
    assert_eq!(
        sharers(RING2.pa),
        [(VM_CTL, Access::ReadWrite), (AUX, Access::ReadWrite)]
    );
    assert_eq!(
        sharers(AUDIT.pa),
        [
            (VM_CTL, Access::ReadOnly),
            (VM_LLM, Access::ReadOnly),
            (AUX, Access::ReadOnly)
        ]
    );

    // Channel peers and doorbells: aux and llm share no channel, so neither may ring the other.
    let aux_channel = sys.channel_of(AUX).expect("aux has a channel");
    assert_eq!(aux_channel.peer(AUX), Some(VM_CTL));
    assert_eq!(sys.channel_of(VM_LLM).unwrap().peer(VM_LLM), Some(VM_CTL));
    assert_eq!(sys.doorbell(AUX, VM_CTL), Some(irq::DOORBELL + 1));
    assert_eq!(sys.doorbell(VM_CTL, AUX), Some(irq::DOORBELL + 1));
    assert_eq!(sys.doorbell(VM_CTL, VM_LLM), Some(irq::DOORBELL));
    assert_eq!(sys.doorbell(AUX, VM_LLM), None);
    assert_eq!(sys.doorbell(VM_LLM, AUX), None);

    // What each guest is told at boot: the ring of its (first) channel.
    let aux_boot = BootInfo::for_vm(&sys, AUX, 1);
    assert_eq!(
        (aux_boot.name(), aux_boot.cpu_mask, aux_boot.boot_cpu),
        ("aux", 0b1000, 3)
    );
    assert_eq!(
        (aux_boot.shared_base, aux_boot.shared_size),
        (ipa::SHARED_BASE, RING2.size)
    );
    assert_eq!(
        BootInfo::for_vm(&sys, VM_CTL, 1).shared_base,
        ipa::SHARED_BASE
    );
    assert_eq!(BootInfo::for_vm(&sys, VM_LLM, 1).cpu_mask, 0b0110);

    // Images to build and embed, each once.
    assert_eq!(
        sys.images().collect::<Vec<_>>(),
        ["guest-ctl", "guest-llm", "guest-aux"]
    );
    assert_eq!(sys.vm_of_core(3), Some(AUX));
}

#[test]
fn a_three_vm_table_is_refused_where_it_collides() {
    let good = three_vms();
    let with_aux = |f: &dyn Fn(&mut VmConfig)| {
        let mut vms = good.vms.to_vec();
        f(&mut vms[AUX]);
        validate(&System {
            vms: leak(vms),
            ..good
        })
    };
    assert_eq!(
        with_aux(&|a| a.console_key = b'2'),
        Err(ConfigError::ConsoleKey { vm: AUX })
    );
    assert_eq!(
        with_aux(&|a| a.tag = "[llm] "),
        Err(ConfigError::ConsoleTag { vm: AUX })
    );
    assert_eq!(
        with_aux(&|a| a.cores = &[2]),
        Err(ConfigError::CoreTwice { core: 2 })
    );
    // aux mapping the ctl-llm ring, which is not its channel's.
    assert_eq!(
        with_aux(&|a| { a.regions = leak(vec![map(&RING, ipa::SHARED_BASE, Access::ReadWrite,)]) }),
        Err(ConfigError::ChannelRegion { channel: 0 })
    );
    // Both of ctl's channels on one doorbell.
    let mut channels = good.channels.to_vec();
    channels[1].doorbell = irq::DOORBELL;
    assert_eq!(
        validate(&System {
            channels: leak(channels),
            ..good
        }),
        Err(ConfigError::ChannelDoorbell { channel: 0 })
    );
    // aux's RAM running into the model region.
    assert_eq!(
        with_aux(&|a| a.ram.size = 0x1000_0000),
        Err(ConfigError::Overlap {
            vm: AUX,
            other: VM_LLM
        })
    );
}

#[test]
fn moving_ctl_off_core_0_is_a_table_edit() {
    let mut ctl = PARTITIONS[VM_CTL];
    let mut llm = PARTITIONS[VM_LLM];
    ctl.cores = &[3];
    llm.cores = &[0, 1, 2];
    let moved = System {
        vms: leak(vec![ctl, llm]),
        work_core: 3,
        ..SYSTEM
    };
    assert_eq!(validate(&moved), Ok(()));
    assert_eq!(moved.vm_of_core(3), Some(VM_CTL));
    assert_eq!(moved.vm_of_core(0), Some(VM_LLM));
    assert_eq!(moved.work_core, 3);
    // guest-ctl's core is its boot core (the first it lists): its UART and INTx lines go there.
    assert_eq!(moved.vms[VM_CTL].cores[0], 3);
    assert_eq!(
        validate(&System {
            work_core: phys::NUM_CORES,
            ..moved
        }),
        Err(ConfigError::WorkCore {
            core: phys::NUM_CORES
        })
    );
}

/// `scripts/run.sh` creates each PCI function the table assigns at the table's slot, and no
/// other PCI device (QEMU cannot read the table; this test keeps the two from drifting).
#[test]
fn run_sh_puts_the_pci_functions_at_the_tables_slots() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/run.sh");
    let text = std::fs::read_to_string(script).expect("scripts/run.sh");
    let mut slots: Vec<u8> = text
        .lines()
        .filter(|l| l.contains("-device") && l.contains("-pci,"))
        .map(|l| {
            let at = l.find("addr=0x").expect("a PCI -device names its slot") + "addr=0x".len();
            let hex: String = l[at..]
                .chars()
                .take_while(char::is_ascii_hexdigit)
                .collect();
            u8::from_str_radix(&hex, 16).expect("hex slot")
        })
        .collect();
    slots.sort_unstable();
    let mut want: Vec<u8> = SYSTEM
        .vms
        .iter()
        .flat_map(|vm| vm.pci.iter().map(|f| f.device))
        .collect();
    want.sort_unstable();
    assert!(!want.is_empty());
    assert_eq!(slots, want);
}
