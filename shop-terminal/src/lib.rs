//! Outpost shop till: the cashier's UI on localhost, talking to the shop's edge node over the
//! LAN with its terminal token; a local SQLite journal; ESC/POS slips; cash-up.

pub mod amount;
pub mod bench;
pub mod cashup;
pub mod code128;
pub mod config;
pub mod coupon;
pub mod edge;
pub mod escpos;
pub mod html;
pub mod journal;
pub mod printer;
pub mod run;
pub mod slip;
pub mod ui;
