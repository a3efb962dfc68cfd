//! Server-rendered HTML: the page frame (status banner, navigation, flash message), escaping,
//! and the little CSS and JS the till needs. Large touch targets, visible focus, labelled
//! controls, `role="alert"` for messages; keyboard shortcuts F2–F9 for the main screens.

pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            _ => o.push(c),
        }
    }
    o
}

const CSS: &str = r#"
*{box-sizing:border-box}body{font:18px/1.4 system-ui,sans-serif;margin:0;background:#f4f4f4;color:#111}
header{display:flex;gap:1em;align-items:center;padding:.5em 1em;background:#123;color:#fff}
header a{color:#fff}nav{display:flex;flex-wrap:wrap;gap:.4em;padding:.5em 1em;background:#dde}
nav a,button,.btn{display:inline-block;min-height:48px;min-width:48px;padding:.6em 1em;font-size:1em;border:2px solid #123;border-radius:6px;background:#fff;color:#123;text-decoration:none;cursor:pointer}
button.primary{background:#0a5;color:#fff;border-color:#063}button.danger{background:#b00;color:#fff}
:focus{outline:4px solid #f90;outline-offset:2px}main{padding:1em;max-width:1100px}
input,select{font-size:1.1em;min-height:48px;padding:.3em .5em;border:2px solid #555;border-radius:4px}
label{display:inline-block;margin:.3em 1em .3em 0}fieldset{border:2px solid #99a;margin:.6em 0;padding:.6em}
.online{background:#0a5;color:#fff;padding:.3em .6em;border-radius:4px}.offline{background:#b00;color:#fff;padding:.3em .6em;border-radius:4px}
.flash{padding:.8em;margin:.6em 0;border-radius:6px;font-weight:600}.ok{background:#dfd;border:2px solid #0a5}.err{background:#fdd;border:2px solid #b00}
table{border-collapse:collapse;background:#fff}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}
.slip{font-family:ui-monospace,monospace;font-size:15px;background:#fff;width:29em;padding:1em;border:1px dashed #555;white-space:pre-wrap}
label.ew{padding:.4em .8em;border:2px solid #123;border-radius:6px;background:#fff}label.ew input{width:32px;height:32px;vertical-align:middle}
.slip .c{text-align:center}.slip .t{font-size:1.6em;font-weight:700}.slip .b{font-weight:700}.slip hr{border:0;border-top:1px dashed #555}
"#;

const JS: &str = r#"
document.addEventListener('keydown',function(e){var k={F2:'/',F4:'/payout',F6:'/void',F7:'/drawer',F8:'/cashup',F9:'/report'}[e.key];if(k){e.preventDefault();location.href=k;}});
var st=document.getElementById('stake'),ew=document.getElementById('each-way');if(st&&ew){st.addEventListener('keydown',function(e){if(e.key==='e'||e.key==='E'){e.preventDefault();ew.checked=!ew.checked;}});}
var ev=document.getElementById('event-code');if(ev){ev.addEventListener('keydown',function(e){if(e.key==='Enter'&&!document.getElementById('selection-code').value){e.preventDefault();document.getElementById('selection-code').focus();}});}
"#;

pub struct Frame<'a> {
    pub title: &'a str,
    pub staff: Option<(&'a str, &'a str)>,
    pub online: bool,
    pub status_text: &'a str,
    pub shop: &'a str,
    pub terminal: &'a str,
    pub flash: Option<(bool, String, String)>,
}

pub fn page(f: &Frame<'_>, body: &str) -> String {
    let status = if f.online {
        "<span id=\"edge-status\" class=\"online\" role=\"status\">Edge online</span>".to_string()
    } else {
        format!(
            "<span id=\"edge-status\" class=\"offline\" role=\"status\">EDGE OFFLINE: bets and payouts refused, nothing queued, reconnecting automatically ({})</span>",
            esc(f.status_text)
        )
    };
    let who = match f.staff {
        Some((id, role)) => format!(
            "<span id=\"staff\">{} ({})</span> <form method=\"post\" action=\"/logout\" style=\"display:inline\"><button id=\"logout\">Log out</button></form>",
            esc(id),
            esc(role)
        ),
        None => String::new(),
    };
    let nav = if f.staff.is_some() {
        "<nav aria-label=\"Till\"><a href=\"/\" accesskey=\"b\">Bet (F2)</a><a href=\"/payout\" id=\"nav-payout\">Payout (F4)</a><a href=\"/void\" id=\"nav-void\">Void (F6)</a><a href=\"/drawer\" id=\"nav-drawer\">Drawer (F7)</a><a href=\"/cashup\" id=\"nav-cashup\">Cash-up (F8)</a><a href=\"/report\" id=\"nav-report\">Report (F9)</a></nav>"
    } else {
        ""
    };
    let flash = match &f.flash {
        Some((ok, code, msg)) => format!(
            "<div id=\"flash\" class=\"flash {}\" role=\"alert\"><span id=\"flash-code\">{}</span> {}</div>",
            if *ok { "ok" } else { "err" },
            esc(code),
            esc(msg)
        ),
        None => String::new(),
    };
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\"><title>{title} - Outpost till</title><style>{CSS}</style></head><body><header><strong>Outpost till</strong><span>Shop {shop} / Terminal {term}</span>{status}<span style=\"margin-left:auto\">{who}</span></header>{nav}<main><h1>{title}</h1>{flash}{body}</main><script>{JS}</script></body></html>",
        title = esc(f.title),
        shop = esc(f.shop),
        term = esc(f.terminal),
    )
}
