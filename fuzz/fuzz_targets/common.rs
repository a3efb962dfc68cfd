//! Shared fuzz setup: an odds book with every UOF producer up to the fuzzer's choosing.
use outpost_core::feed::book::{BookConfig, OddsBook};
use outpost_core::ids::Jurisdiction;
use outpost_core::pricing::margin::MarginMethod;
use outpost_core::pricing::policy::{MarginTarget, PricingPolicy};

pub fn book() -> OddsBook {
    OddsBook::new(BookConfig {
        recovery_retry_ms: None,
        alive_timeout_ms: 20_000,
        uof_products: vec![1, 2, 3],
        policy: PricingPolicy {
            jurisdiction: Jurisdiction::new("GB").unwrap(),
            default: MarginTarget {
                margin_bp: 500,
                method: MarginMethod::Shin,
            },
            by_class: Default::default(),
            max_price_milli: 500_000,
        },
    })
}
