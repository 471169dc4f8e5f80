//! CronJob schedules, with and without a time zone.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    let (schedule, zone) = text.split_once('\t').map_or((text, None), |(s, z)| (s, Some(z)));
    let _ = driftless_model::cron::Schedule::parse(schedule, zone);
});
