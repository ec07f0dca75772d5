//! `flowctl attach` and `flowctl detach`.

use flowctl_datapath::{AttachRequest, Attachment, AttachmentState, PinLayout};

use crate::cli::{AttachArgs, DetachArgs};

/// Attaches and reports each direction.
pub fn attach(layout: &PinLayout, args: &AttachArgs) -> anyhow::Result<()> {
    let request = AttachRequest {
        interface: args.interface.clone(),
        directions: args.direction.directions(),
        netns: args.netns.clone(),
        max_flows: args.max_flows,
        mode: args.hook.attach_mode.unwrap_or_default(),
        order: args.hook.attach_order.unwrap_or_default(),
        sampling: args.hook.sampling().map_err(anyhow::Error::msg)?,
    };
    for a in flowctl_datapath::attach(layout, &request)? {
        let what = if a.state == AttachmentState::AlreadyAttached {
            "already attached"
        } else {
            "attached"
        };
        println!("{what}: {}", describe(&a));
    }
    Ok(())
}

/// Detaches from one interface or everywhere.
pub fn detach(layout: &PinLayout, args: &DetachArgs) -> anyhow::Result<()> {
    let detached = match &args.interface {
        Some(interface) if !args.all => {
            flowctl_datapath::detach(layout, interface, &args.direction.directions(), args.netns.as_deref())?
        }
        _ => flowctl_datapath::detach_all(layout, args.purge)?,
    };
    for a in &detached {
        println!("detached: {}", describe(a));
    }
    if args.all {
        println!(
            "{} attachment(s) removed{}",
            detached.len(),
            if args.purge { ", flow cache removed" } else { "" }
        );
    }
    Ok(())
}

/// `veth0 egress (ifindex 4, netns ns1, tcx)`, and `, sampling 1:100
/// random` when sampled.
pub fn describe(a: &Attachment) -> String {
    let name = a.interface.clone().unwrap_or_else(|| format!("#{}", a.ifindex));
    let sampling = match a.sampling {
        Some(s) if s.is_sampled() => format!(", sampling {s}"),
        _ => String::new(),
    };
    format!(
        "{name} {} (ifindex {}, netns {}, {}{sampling})",
        a.direction, a.ifindex, a.netns, a.hook
    )
}
