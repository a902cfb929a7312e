//! Go's `flag` conventions on a clap command tree. Upstream's binaries parse flags with Go's
//! `flag` package, so the charts and manifests written for them render `--flag=true` and
//! `--flag=false`, and sometimes give a flag twice expecting the last value to win. clap's
//! derive makes a `bool` field a presence switch that refuses a value; [`go_style`] adapts every
//! boolean flag of every subcommand in one place, so a new flag cannot miss it.

use clap::ArgAction;

/// The command with Go's conventions: each boolean flag takes `--flag`, `--flag=true` or
/// `--flag=false` (not `--flag false`: Go reads that as a positional argument), and a flag
/// given twice keeps its last value.
pub fn go_style(command: clap::Command) -> clap::Command {
    command
        .args_override_self(true)
        .mut_args(go_bool)
        .mut_subcommands(go_style)
}

fn go_bool(arg: clap::Arg) -> clap::Arg {
    if !matches!(arg.get_action(), ArgAction::SetTrue) {
        return arg;
    }
    let default_true = arg
        .get_default_values()
        .first()
        .is_some_and(|v| v == "true");
    arg.action(ArgAction::Set)
        .num_args(0..=1)
        .require_equals(true)
        .default_missing_value("true")
        .default_value(if default_true { "true" } else { "false" })
        .value_parser(clap::value_parser!(bool))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};

    #[derive(Parser, Debug)]
    struct Cli {
        #[arg(long, global = true)]
        json: bool,
        #[command(subcommand)]
        command: Sub,
    }

    #[derive(Subcommand, Debug)]
    enum Sub {
        Node {
            #[arg(long)]
            rotation: bool,
            #[arg(long, default_value_t = true)]
            chain: bool,
            #[arg(long, default_value = "2m")]
            interval: String,
        },
    }

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        let matches = go_style(Cli::command()).try_get_matches_from(args)?;
        Cli::from_arg_matches(&matches)
    }

    fn node(cli: &Cli) -> (bool, bool, &str) {
        let Sub::Node {
            rotation,
            chain,
            interval,
        } = &cli.command;
        (*rotation, *chain, interval)
    }

    #[test]
    fn booleans_take_go_forms_everywhere_including_globals() {
        let cli = parse(&["x", "node"]).unwrap();
        assert_eq!((cli.json, node(&cli)), (false, (false, true, "2m")));
        let cli = parse(&["x", "node", "--rotation", "--chain=false", "--json=true"]).unwrap();
        assert_eq!((cli.json, node(&cli)), (true, (true, false, "2m")));
        let cli = parse(&["x", "node", "--rotation=true", "--rotation=false"]).unwrap();
        assert!(!node(&cli).0, "the last value wins");
        let cli = parse(&["x", "node", "--interval=1m", "--interval=3m"]).unwrap();
        assert_eq!(node(&cli).2, "3m");
    }

    #[test]
    fn what_go_would_refuse_or_misread_is_refused() {
        assert!(parse(&["x", "node", "--rotation", "true"]).is_err());
        assert!(parse(&["x", "node", "--rotation=yes"]).is_err());
    }
}
