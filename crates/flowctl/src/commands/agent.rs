//! `flowctl agent` and `flowctl config check`.

use std::path::Path;

use flowctl_agent::{log_format::LogFormat, ConfigSource, Overrides};
use flowctl_datapath::{caps::Needs, PinLayout};
use flowctl_export::ExportFormat;
use flowctl_ipfix::template::Strictness;

use crate::cli::{AgentArgs, DirectionArg};

/// Runs the agent until SIGTERM/SIGINT, or sends a request to the running one.
/// `log_format` (`--log-format`) overrides the file's `log.format`.
pub fn agent(layout: &PinLayout, args: &AgentArgs, log_format: Option<LogFormat>) -> anyhow::Result<()> {
    if let Some(action) = &args.action {
        return super::agent_control::request(action);
    }
    let direction = args.direction.map(|d| match d {
        DirectionArg::Egress => "egress".to_string(),
        DirectionArg::Ingress => "ingress".to_string(),
        DirectionArg::Both => "both".to_string(),
    });
    let source = ConfigSource {
        path: args.config.clone(),
        overrides: Overrides {
            interfaces: args.interface.clone(),
            netns: args.netns.clone(),
            direction,
            collectors: args.collector.clone(),
            tls: flowctl_agent::config::file::TlsEntry {
                ca_file: args.tls_ca.as_ref().map(|p| p.display().to_string()),
                cert_file: args.tls_cert.as_ref().map(|p| p.display().to_string()),
                key_file: args.tls_key.as_ref().map(|p| p.display().to_string()),
                server_name: args.tls_server_name.clone(),
            },
            idle_timeout: args.idle_timeout.clone(),
            active_timeout: args.active_timeout.clone(),
            template_refresh: args.template_refresh.clone(),
            scan_interval: args.scan_interval.clone(),
            max_flows: args.max_flows,
            detach_on_exit: args.detach_on_exit,
            attach_mode: args.attach.attach_mode.map(|m| m.to_string()),
            attach_order: args.attach.attach_order.map(|o| o.to_string()),
            spool_dir: args.spool_dir.as_ref().map(|p| p.display().to_string()),
            control_socket: args.control.control_socket.as_ref().map(|p| p.display().to_string()),
            metrics_address: args.metrics_address.clone(),
            no_metrics: args.no_metrics,
            sample_interval: args.attach.sample_interval,
            sample_mode: args.attach.sample_mode.map(|m| m.to_string()),
            log_format: log_format.map(|f| f.to_string()),
        },
    };
    // Namespaces may come from the file: entering them needs CAP_SYS_ADMIN.
    let config = source.load()?;
    if config.interfaces.iter().any(|i| i.netns.is_some()) {
        super::privileges::check(
            Needs {
                enter_netns: true,
                ..Needs::ATTACH
            }
            .preparing(layout),
        )?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(flowctl_agent::run(source, layout.clone()))?;
    Ok(())
}

/// Validates a configuration file and summarises it.
pub fn config_check(file: &Path) -> anyhow::Result<()> {
    let c = flowctl_agent::config::load(file, Strictness::Agent)?;
    println!(
        "{}: ok: {} collector(s), {} template(s) ({}), {} interface(s)",
        file.display(),
        c.collectors.len(),
        c.templates.len(),
        c.templates
            .iter()
            .map(|t| t.id.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        c.interfaces.len()
    );
    // What a NetFlow v9 collector gets of the built-in templates.
    let dropped = flowctl_agent::config::netflow9::dropped_fields(&c.templates);
    for (i, _) in c
        .collectors
        .iter()
        .enumerate()
        .filter(|(_, c)| c.format == ExportFormat::NetflowV9)
    {
        if !dropped.is_empty() {
            println!(
                "{}: note: collectors[{i}] (netflow9) gets the built-in templates without {}: NetFlow v9 has no field for it",
                file.display(),
                dropped.join(", ")
            );
        }
    }
    Ok(())
}
