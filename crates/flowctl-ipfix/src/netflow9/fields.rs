//! NetFlow v9 field types for flowctl's information elements (RFC 3954 §8).
//!
//! IANA keeps IPFIX information elements 0..=127 compatible with NetFlow v9
//! field types (the registry's note "Values 0-127: NFv9-compatible"): those
//! go over v9 under their own number, at the v9 length where it differs
//! (`TCP_FLAGS` is one byte, `IPV4_IDENT` two). Elements 128 and above are
//! IPFIX's own. Three of them have a v9 counterpart and are mapped:
//! `flowStartMilliseconds`/`flowEndMilliseconds` become `FIRST_SWITCHED`/
//! `LAST_SWITCHED` (22/21, milliseconds of sysUptime), and
//! `icmpTypeCodeIPv6` becomes `ICMP_TYPE` (32), which RFC 3954 defines for
//! ICMP of either IP version. Every other one is refused, with the reason.

use crate::fields::{FieldDef, FieldKind};

/// `TCP_FLAGS`: one byte in v9.
pub const TCP_FLAGS: u16 = 6;
/// `LAST_SWITCHED`: sysUptime in milliseconds at the last packet.
pub const LAST_SWITCHED: u16 = 21;
/// `FIRST_SWITCHED`: sysUptime in milliseconds at the first packet.
pub const FIRST_SWITCHED: u16 = 22;
/// `ICMP_TYPE`: type * 256 + code, for ICMP and ICMPv6.
pub const ICMP_TYPE: u16 = 32;
/// `IPV4_IDENT`: two bytes in v9.
pub const IPV4_IDENT: u16 = 54;
/// The largest field type shared by NetFlow v9 and IPFIX.
pub const LAST_SHARED_TYPE: u16 = 127;

/// How a value is written into a v9 field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// As IPFIX writes this kind of value, at the v9 length.
    Same(FieldKind),
    /// The low byte of an integer: `TCP_FLAGS` keeps FIN to CWR; RFC 7125's
    /// NS and reserved bits have no room in it (never saturated to 0xff).
    LowByte,
    /// A Unix time as milliseconds of the exporter's sysUptime, 4 bytes
    /// (`FIRST_SWITCHED`, `LAST_SWITCHED`).
    SysUptime,
}

/// One field of a v9 template: the information element its value comes
/// from, and how it goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct V9Field {
    /// The element whose value the field carries (values are looked up by it).
    pub def: &'static FieldDef,
    /// The v9 field type.
    pub field_type: u16,
    /// The v9 field length in bytes.
    pub length: u16,
    /// How the value is written.
    pub encoding: Encoding,
}

/// An element NetFlow v9 cannot carry, and why.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{:?} (IPFIX IE {}) cannot go over NetFlow v9: {reason}", .def.name, .def.id)]
pub struct NotInV9 {
    /// The element.
    pub def: &'static FieldDef,
    /// Why, and what to use instead where v9 has something.
    pub reason: &'static str,
}

const NO_TYPE: &str = "v9 field types stop at 127 and none of them carries it";
const TIMES: &str = "v9 carries flow times only as FIRST_SWITCHED/LAST_SWITCHED, milliseconds of sysUptime: \
                     use flowStartMilliseconds/flowEndMilliseconds";
const DURATION: &str = "v9 has no duration field: collectors take it from FIRST_SWITCHED/LAST_SWITCHED \
                        (flowStartMilliseconds/flowEndMilliseconds)";
const DOMAIN: &str = "v9 carries the observation domain as the Source ID of every packet header";
const EXPORTER: &str = "v9 has no exporter address field: collectors take the packets' source address";
const ICMP_PARTS: &str = "v9 has only ICMP_TYPE (type * 256 + code): use icmpTypeCodeIPv4 or icmpTypeCodeIPv6";
const DSCP: &str = "v9 has only SRC_TOS, the whole TOS byte: use ipClassOfService";
const DOT1Q: &str = "v9 has SRC_VLAN for the outer VLAN id: use vlanId";

/// The v9 field for an element, or why v9 cannot carry it.
pub fn v9_field(def: &'static FieldDef) -> Result<V9Field, NotInV9> {
    let field = |field_type, length, encoding| {
        Ok(V9Field {
            def,
            field_type,
            length,
            encoding,
        })
    };
    let refuse = |reason| Err(NotInV9 { def, reason });
    match def.id {
        TCP_FLAGS => field(TCP_FLAGS, 1, Encoding::LowByte),
        IPV4_IDENT => field(IPV4_IDENT, 2, Encoding::Same(def.kind)),
        id if id <= LAST_SHARED_TYPE => field(id, def.length, Encoding::Same(def.kind)),
        // flowStartMilliseconds, flowEndMilliseconds
        152 => field(FIRST_SWITCHED, 4, Encoding::SysUptime),
        153 => field(LAST_SWITCHED, 4, Encoding::SysUptime),
        // icmpTypeCodeIPv6
        139 => field(ICMP_TYPE, 2, Encoding::Same(FieldKind::Unsigned)),
        // flowStart/EndSeconds, flowStart/EndNanoseconds
        150 | 151 | 156 | 157 => refuse(TIMES),
        // flowDurationMilliseconds
        161 => refuse(DURATION),
        // observationDomainId
        149 => refuse(DOMAIN),
        // exporterIPv4Address, exporterIPv6Address
        130 | 131 => refuse(EXPORTER),
        // icmpTypeIPv4, icmpCodeIPv4, icmpTypeIPv6, icmpCodeIPv6
        176..=179 => refuse(ICMP_PARTS),
        // ipDiffServCodePoint
        195 => refuse(DSCP),
        // dot1qVlanId
        243 => refuse(DOT1Q),
        _ => refuse(NO_TYPE),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fields::{self, lookup};

    fn v9(name: &str) -> Result<V9Field, NotInV9> {
        v9_field(lookup(name).unwrap())
    }

    #[test]
    fn shared_elements_keep_their_number_and_mapped_ones_get_the_v9_type() {
        let cases = [
            ("octetDeltaCount", 1, 8),
            ("tcpControlBits", TCP_FLAGS, 1),
            ("ingressInterface", 10, 4),
            ("fragmentIdentification", IPV4_IDENT, 2),
            ("packetTotalCount", 86, 8),
            ("flowStartMilliseconds", FIRST_SWITCHED, 4),
            ("flowEndMilliseconds", LAST_SWITCHED, 4),
            ("icmpTypeCodeIPv6", ICMP_TYPE, 2),
            ("icmpTypeCodeIPv4", ICMP_TYPE, 2),
        ];
        for (name, field_type, length) in cases {
            let f = v9(name).unwrap();
            assert_eq!((f.field_type, f.length), (field_type, length), "{name}");
        }
        assert_eq!(v9("tcpControlBits").unwrap().encoding, Encoding::LowByte);
        assert_eq!(v9("flowEndMilliseconds").unwrap().encoding, Encoding::SysUptime);
    }

    #[test]
    fn every_element_above_127_is_mapped_or_refused_with_a_reason() {
        for def in fields::all() {
            match v9_field(def) {
                Ok(f) => assert!(f.field_type <= LAST_SHARED_TYPE, "{}", def.name),
                Err(e) => {
                    assert!(def.id > LAST_SHARED_TYPE, "{} is NFv9-compatible", def.name);
                    let text = e.to_string();
                    assert!(text.contains(def.name) && !text.contains('\n'), "{text}");
                }
            }
        }
        let e = v9("flowEndReason").unwrap_err().to_string();
        assert_eq!(
            e,
            "\"flowEndReason\" (IPFIX IE 136) cannot go over NetFlow v9: \
             v9 field types stop at 127 and none of them carries it"
        );
        assert!(v9("flowStartSeconds")
            .unwrap_err()
            .reason
            .contains("flowStartMilliseconds"));
        assert!(v9("dot1qVlanId").unwrap_err().reason.contains("vlanId"));
    }
}
