//! `outpost bench place`: the bet-acceptance benchmark. The generator lives in the edge-node
//! crate (`edge-node/src/bench/`) so that it builds in release without this launcher's
//! dependencies (the AWS SDK); this subcommand runs the same code as `edge-node bench place`.

pub use edge_node::bench::{BenchArgs, run};
