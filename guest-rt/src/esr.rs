//! Decoding of ESR_EL1 for fatal-exception reports (pure logic).

/// Exception class field of an ESR value.
pub fn class(esr: u64) -> u64 {
    (esr >> 26) & 0x3f
}

/// Name of an exception class.
pub fn class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "unknown reason",
        0x01 => "WFI/WFE trapped",
        0x07 => "SIMD/FP access trapped",
        0x0e => "illegal execution state",
        0x15 => "SVC",
        0x16 => "HVC",
        0x18 => "system register access trapped",
        0x20 => "instruction abort from EL0",
        0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 => "data abort from EL0",
        0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2c => "floating-point exception",
        0x2f => "SError",
        0x3c => "BRK",
        _ => "other",
    }
}

/// For instruction and data aborts: the fault status (xFSC) in words, with the
/// translation level where it applies.
pub fn fault_status(esr: u64) -> Option<(&'static str, Option<u64>)> {
    if !matches!(class(esr), 0x20 | 0x21 | 0x24 | 0x25) {
        return None;
    }
    let fsc = esr & 0x3f;
    let level = fsc & 0x3;
    Some(match fsc >> 2 {
        0b0000 => ("address size fault", Some(level)),
        0b0001 => ("translation fault", Some(level)),
        0b0010 => ("access flag fault", Some(level)),
        0b0011 => ("permission fault", Some(level)),
        _ if fsc == 0x10 => ("synchronous external abort", None),
        _ if fsc == 0x21 => ("alignment fault", None),
        _ => ("other fault", None),
    })
}

/// Whether a data abort was a write (ESR.ISS.WnR).
pub fn is_write(esr: u64) -> bool {
    class(esr) & !1 == 0x24 && esr & (1 << 6) != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_translation_fault_of_a_load() {
        let esr = 0x9600_0004; // data abort, same EL, level-0 translation fault, read
        assert_eq!(class(esr), 0x25);
        assert_eq!(class_name(class(esr)), "data abort");
        assert_eq!(fault_status(esr), Some(("translation fault", Some(0))));
        assert!(!is_write(esr));
    }

    #[test]
    fn decodes_external_abort_and_write() {
        assert_eq!(
            fault_status(0x9600_0010),
            Some(("synchronous external abort", None))
        );
        assert!(is_write(0x9600_0047));
        assert_eq!(
            fault_status(0x9600_0047),
            Some(("translation fault", Some(3)))
        );
        assert_eq!(fault_status(0x9600_0021), Some(("alignment fault", None)));
    }

    #[test]
    fn non_aborts_have_no_fault_status() {
        let svc = 0x15 << 26;
        assert_eq!(fault_status(svc), None);
        assert_eq!(class_name(class(svc)), "SVC");
        assert!(!is_write(svc | (1 << 6)));
    }
}
