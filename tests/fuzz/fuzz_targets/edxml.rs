//! edXML and go.vn packages: every reader an accepted package goes through. None may panic, and
//! whatever the strict parser accepts, the whole-package reader reads too.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let parsed = lienthong_edxml::parse(data);
    let whole = lienthong_edxml::parse::read_whole(data);
    if parsed.is_ok() {
        assert!(whole.is_ok(), "parse accepted what read_whole refused");
    }
    let _ = lienthong_edxml::parse::read_edoc(data);
    let _ = lienthong_edxml::parse::read_govn(data);
    let _ = lienthong_translate::from_edxml(data);
});
