//! `flowctl status`.

use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use flowctl_datapath::{
    caps::{CapSet, Capability},
    netns, Attachment, AttachmentState, PinLayout,
};
use serde_json::json;

use crate::cli::{OutputFormat, StatusArgs};

/// Prints attachments, cache fill and datapath counters.
pub fn status(layout: &PinLayout, args: &StatusArgs) -> anyhow::Result<()> {
    let s = flowctl_datapath::status(layout)?;
    let c = &s.counters;
    let blind = Blindness::now();
    if args.output == OutputFormat::Json {
        let attachments: Vec<_> = s
            .attachments
            .iter()
            .map(|a| {
                let (state, link_id, program_id) = match a.state {
                    AttachmentState::Attached { link_id, program_id } => ("attached", link_id, Some(program_id)),
                    _ if blind.hides(a) => ("unknown", None, None),
                    _ => ("defunct", None, None),
                };
                json!({"netns": a.netns, "interface": a.interface, "ifindex": a.ifindex,
                       "direction": a.direction.to_string(), "mode": a.hook.to_string(), "state": state,
                       "link_id": link_id, "program_id": program_id,
                       "sample_interval": a.sampling.map(|s| s.packets_per_sample()),
                       "sample_mode": a.sampling.filter(|s| s.is_sampled()).map(|s| s.mode.to_string())})
            })
            .collect();
        let doc = json!({
            "pin_dir": layout.root(),
            "attachments": attachments,
            "flows": s.flows, "max_flows": s.max_flows,
            "non_ip_packets": c.non_ip_packets, "non_ip_octets": c.non_ip_octets,
            "malformed_packets": c.malformed_packets, "malformed_octets": c.malformed_octets,
            "not_recorded_packets": c.not_recorded_packets, "not_recorded_octets": c.not_recorded_octets,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }

    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header([
        "NETNS",
        "INTERFACE",
        "IFINDEX",
        "DIRECTION",
        "MODE",
        "SAMPLING",
        "STATE",
    ]);
    for a in &s.attachments {
        let state = match a.state {
            AttachmentState::Attached {
                link_id: Some(link_id),
                program_id,
            } => format!("attached (link {link_id}, prog {program_id})"),
            AttachmentState::Attached { program_id, .. } => format!("attached (prog {program_id})"),
            _ if blind.hides(a) => "unknown (looking into its namespace needs CAP_SYS_ADMIN)".to_string(),
            _ => "defunct (interface or namespace gone)".to_string(),
        };
        let name = a.interface.clone().unwrap_or_else(|| "?".into());
        t.add_row(vec![
            a.netns.clone(),
            name,
            a.ifindex.to_string(),
            a.direction.to_string(),
            a.hook.to_string(),
            a.sampling.map_or_else(|| "?".to_string(), |s| s.to_string()),
            state,
        ]);
    }
    println!("pins: {}", layout.root().display());
    if s.attachments.is_empty() {
        println!("not attached to any interface");
    } else {
        println!("{t}");
    }
    let fill = 100.0 * s.flows as f64 / s.max_flows.max(1) as f64;
    println!("flow cache: {} / {} flows ({fill:.1} %)", s.flows, s.max_flows);
    println!(
        "not recorded (cache full): {} packets, {} bytes",
        c.not_recorded_packets, c.not_recorded_octets
    );
    println!("non-IP frames: {} packets, {} bytes", c.non_ip_packets, c.non_ip_octets);
    println!(
        "malformed IP: {} packets, {} bytes",
        c.malformed_packets, c.malformed_octets
    );
    Ok(())
}

/// Without CAP_SYS_ADMIN, interfaces in other namespaces cannot be looked
/// up, and their attachments would look defunct when they may not be.
struct Blindness {
    can_enter: bool,
    own_netns: Option<u32>,
}

impl Blindness {
    fn now() -> Self {
        Self {
            can_enter: CapSet::effective().is_none_or(|c| c.has(Capability::SysAdmin)),
            own_netns: netns::current_netns_ino().ok(),
        }
    }

    /// Whether `a`'s state cannot be told from here.
    fn hides(&self, a: &Attachment) -> bool {
        !self.can_enter && a.interface.is_none() && self.own_netns != Some(a.netns_ino)
    }
}
