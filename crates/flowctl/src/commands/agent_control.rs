//! `flowctl agent status` and `flowctl agent resend-templates`: requests to
//! the running agent over its control socket.

use anyhow::{anyhow, Context};
use comfy_table::{presets::UTF8_BORDERS_ONLY, Table};
use flowctl_agent::control::{self, AgentStatus, Request, Response};

use crate::cli::{AgentAction, ControlArgs, OutputFormat};

/// Sends the request and prints the answer.
pub fn request(action: &AgentAction) -> anyhow::Result<()> {
    match action {
        AgentAction::Status { output, control } => match ask(control, &Request::Status)? {
            Response::Status(s) => print_status(&s, *output),
            other => Err(anyhow!("the agent answered {other:?}")),
        },
        AgentAction::ResendTemplates { control } => match ask(control, &Request::ResendTemplates)? {
            Response::Ok => {
                println!("templates sent again to every collector");
                Ok(())
            }
            other => Err(anyhow!("the agent answered {other:?}")),
        },
    }
}

fn ask(control: &ControlArgs, request: &Request) -> anyhow::Result<Response> {
    let socket = control.path();
    match control::request(&socket, request).with_context(|| format!("no agent answers on {}", socket.display()))? {
        Response::Error { message } => Err(anyhow!("the agent: {message}")),
        answer => Ok(answer),
    }
}

fn print_status(s: &AgentStatus, output: OutputFormat) -> anyhow::Result<()> {
    if output == OutputFormat::Json {
        println!("{}", serde_json::to_string_pretty(s)?);
        return Ok(());
    }
    println!("agent pid {}", s.pid);
    match &s.last_pass {
        Some(p) => println!(
            "last aging pass {:.1} s ago: {} of {} flows read, {} records, {:.1} ms",
            p.seconds_ago, p.flows, s.capacity, p.records, p.duration_ms
        ),
        None => println!("no aging pass yet"),
    }
    let mut t = Table::new();
    t.load_preset(UTF8_BORDERS_ONLY);
    t.set_header([
        "COLLECTOR",
        "DOMAIN",
        "UP",
        "QUEUED",
        "RECORDS",
        "MESSAGES",
        "NOT SENT",
        "ERRORS",
        "SEQUENCE",
    ]);
    for c in &s.collectors {
        t.add_row(vec![
            c.endpoint.clone(),
            c.observation_domain_id.to_string(),
            if c.connected { "yes" } else { "no" }.to_string(),
            c.queued.to_string(),
            c.records.to_string(),
            c.messages.to_string(),
            c.not_sent.to_string(),
            c.errors.to_string(),
            c.sequence.to_string(),
        ]);
    }
    println!("{t}");
    Ok(())
}
