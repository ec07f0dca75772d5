//! `flowctl ipfix send`.

use std::path::Path;

use flowctl_ipfix::template::Strictness;

/// Sends synthetic flows to the configured collectors.
pub fn send(config: &Path, flows: &Path) -> anyhow::Result<()> {
    let config = flowctl_agent::config::load(config, Strictness::Synthetic)?;
    let flows = flowctl_agent::synthetic::load(flows, &config).map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime
        .block_on(flowctl_agent::synthetic::send(&config, &flows))
        .map_err(anyhow::Error::msg)?;
    for (endpoint, n) in report {
        println!("{endpoint}: sent templates and {n} record(s)");
    }
    Ok(())
}
