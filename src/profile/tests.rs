use super::*;
use rand::SeedableRng;

fn err_of(text: &str) -> ProfileError {
    match Profile::from_toml_str(text, "t.toml") {
        Ok(p) => panic!("expected an error, got {p:?}"),
        Err(e) => e,
    }
}

#[test]
fn every_shipped_profile_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let p = Profile::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(p.violations().is_empty());
            assert_ne!(p.name, "unnamed", "{} should name itself", path.display());
            n += 1;
        }
    }
    assert!(n >= 4, "expected quick + at least three realistic profiles, found {n}");
}

#[test]
fn default_profile_is_quick() {
    let p = Profile::load_with_overrides(None, &ProfileOverrides::default()).unwrap();
    assert_eq!(p.name, "quick");
    assert_eq!(p.target.pasv_range, Some(PortRange { min: 30000, max: 30099 }));
}

#[test]
fn syntax_error_names_line() {
    let e = err_of("name = \"x\"\n[load]\nsessions = = 3\n");
    match e {
        ProfileError::Syntax { line, .. } => assert_eq!(line, Some(3)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_field_names_line_and_field() {
    let e = err_of("[session]\nfiles_per_session = 3\nparalel_connections = 2\n");
    let msg = e.to_string();
    assert!(matches!(e, ProfileError::Syntax { line: Some(3), .. }), "{msg}");
    assert!(msg.contains("paralel_connections"), "{msg}");
}

#[test]
fn wrong_type_names_line() {
    let e = err_of("[load]\nsessions = \"many\"\n");
    assert!(matches!(e, ProfileError::Syntax { line: Some(2), .. }), "{e}");
}

#[test]
fn bad_duration_explains_format() {
    let e = err_of("[load]\nduration = \"ten seconds\"\n").to_string();
    assert!(e.contains("line 2") && e.contains("\"10s\""), "{e}");
}

#[test]
fn each_semantic_violation_names_field_and_line() {
    let cases: &[(&str, &str, usize)] = &[
        ("[load]\nsessions = 0\n", "load.sessions", 2),
        ("[load]\nmodel = \"open\"\nrate = 0.0\n", "load.rate", 3),
        (
            "[load]\nmodel = \"open\"\nrate = 1.0\nmax_in_flight = 0\n",
            "load.max_in_flight",
            4,
        ),
        ("[load]\ntotal_sessions = 0\n", "load.total_sessions", 2),
        ("[load]\nduration = \"0s\"\n", "load.duration", 2),
        (
            "[session]\nparallel_connections = 0\n",
            "session.parallel_connections",
            2,
        ),
        (
            "[session]\nparallel_connections = 65\n",
            "session.parallel_connections",
            2,
        ),
        (
            "[session]\nthink_time = \"2s\"\nthink_time_max = \"1s\"\n",
            "session.think_time_max",
            3,
        ),
        ("[session]\nbandwidth_cap = 0\n", "session.bandwidth_cap", 2),
        (
            "[session]\nsource_addresses = [\"nope\"]\n",
            "session.source_addresses",
            2,
        ),
        ("[mix]\nretr = 0\nstor = 0\nlist = 0\n", "mix", 1),
        (
            "[file_size]\ndistribution = \"uniform\"\nmin = \"2MiB\"\nmax = \"1MiB\"\n",
            "file_size.min",
            3,
        ),
        (
            "[file_size]\ndistribution = \"lognormal\"\nmedian = \"1KiB\"\nsigma = -1.0\nmax = \"1MiB\"\n",
            "file_size.sigma",
            4,
        ),
        ("[target]\nurl = \"http://x\"\n", "target.url", 2),
        ("[remote]\nstor_dir = \" \"\n", "remote.stor_dir", 2),
        ("[timeouts]\nreply = \"0s\"\n", "timeouts.reply", 2),
    ];
    for (text, field, line) in cases {
        match err_of(text) {
            ProfileError::Invalid { field: f, line: l, .. } => {
                assert_eq!((f.as_str(), l), (*field, Some(*line)), "{text}");
            }
            other => panic!("{text}: expected Invalid, got {other}"),
        }
    }
}

#[test]
fn missing_end_condition_is_rejected() {
    // Both limits removed: the run would never end.
    let mut p = Profile::default();
    p.load.duration = None;
    p.load.total_sessions = None;
    assert_eq!(p.violations()[0].field, "load.duration");
}

#[test]
fn override_errors_name_the_flag() {
    let o = ProfileOverrides {
        parallel: Some(0),
        ..Default::default()
    };
    match Profile::load_with_overrides(None, &o) {
        Err(ProfileError::Override { flag, .. }) => assert_eq!(flag, "--parallel"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn source_addresses_from_the_command_line_replace_the_profiles_and_are_checked() {
    let o = ProfileOverrides {
        source_addresses: Some(vec!["127.0.0.2-127.0.0.4".into(), "127.0.1.1".into()]),
        ..Default::default()
    };
    let p = Profile::load_with_overrides(None, &o).unwrap();
    assert_eq!(p.session.source_addresses, ["127.0.0.2-127.0.0.4", "127.0.1.1"]);
    let bad = ProfileOverrides {
        source_addresses: Some(vec!["127.0.0.9-127.0.0.2".into()]),
        ..Default::default()
    };
    match Profile::load_with_overrides(None, &bad) {
        Err(ProfileError::Override { flag, .. }) => assert_eq!(flag, "--source-addresses"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn overrides_apply() {
    let o = ProfileOverrides {
        rate: Some(5.0),
        files_per_session: Some(3),
        mix: Some(parse_mix("list=1").unwrap()),
        pasv_range: Some("31000-31009".parse().unwrap()),
        ..Default::default()
    };
    let p = Profile::load_with_overrides(None, &o).unwrap();
    assert_eq!(p.load.model, LoadModel::Open);
    assert_eq!(p.load.rate, 5.0);
    assert_eq!(p.session.files_per_session, 3);
    assert_eq!(
        p.mix,
        Mix {
            retr: 0,
            stor: 0,
            list: 1
        }
    );
    assert_eq!(p.target.pasv_range.map(|r| r.width()), Some(10));
}

#[test]
fn mix_parsing() {
    assert_eq!(
        parse_mix("retr=7, stor=2").unwrap(),
        Mix {
            retr: 7,
            stor: 2,
            list: 0
        }
    );
    assert!(parse_mix("retr=0").is_err());
    assert!(parse_mix("dele=3").is_err());
    assert!(parse_mix("retr").is_err());
    assert!(parse_mix("retr=-1").is_err());
}

#[test]
fn mix_pick_follows_weights() {
    let mix = Mix {
        retr: 3,
        stor: 1,
        list: 0,
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut counts = [0u32; 3];
    for _ in 0..40_000 {
        counts[mix.pick(&mut rng) as usize] += 1;
    }
    assert_eq!(counts[2], 0);
    let ratio = f64::from(counts[0]) / f64::from(counts[1]);
    assert!((2.8..3.2).contains(&ratio), "{counts:?}");
}

#[test]
fn size_distributions_stay_in_bounds() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let u = SizeDistribution::Uniform {
        min: ByteCount(10),
        max: ByteCount(20),
    };
    let l = SizeDistribution::Lognormal {
        median: ByteCount(1000),
        sigma: 1.0,
        max: ByteCount(5000),
    };
    let mut below_median = 0;
    for _ in 0..10_000 {
        assert!((10..=20).contains(&u.sample(&mut rng)));
        let x = l.sample(&mut rng);
        assert!(x <= 5000);
        if x < 1000 {
            below_median += 1;
        }
    }
    // Half the lognormal mass lies below the median.
    assert!((4700..5300).contains(&below_median), "{below_median}");
}

#[test]
fn resolved_profile_round_trips_through_toml() {
    let p = Profile::load_with_overrides(None, &ProfileOverrides::default()).unwrap();
    let text = toml::to_string(&p).unwrap();
    let back = Profile::from_toml_str(&text, "round-trip").unwrap();
    assert_eq!(back, p);
}

#[test]
fn resolved_profile_round_trips_through_json() {
    // The manifest stores the profile as JSON, and plan reads it back from there.
    for path in [
        "profiles/quick.toml",
        "profiles/nat-office.toml",
        "profiles/filezilla-office.toml",
        "profiles/lftp-mirror.toml",
        "profiles/sweep-burst.toml",
        "profiles/sweep-realistic.toml",
    ] {
        let p = Profile::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap();
        let json = serde_json::to_value(&p).unwrap();
        let back: Profile = serde_json::from_value(json).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(back, p);
    }
}

#[test]
fn the_default_ramp_opens_at_most_200_connections_a_second_and_is_recorded() {
    use std::time::Duration;
    let no_ramp = |sessions: u32, parallel: u32| {
        let text = format!("[load]\nsessions = {sessions}\n[session]\nparallel_connections = {parallel}\n");
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("p.toml");
        std::fs::write(&path, text).unwrap();
        Profile::load_with_overrides(Some(&path), &ProfileOverrides::default()).unwrap()
    };
    // Small loads keep the 1 s a ramp always had.
    assert_eq!(no_ramp(8, 2).ramp_up(), Duration::from_secs(1));
    assert_eq!(no_ramp(100, 2).ramp_up(), Duration::from_secs(1));
    // 1,000 sessions × 2: 10 s, not 2,000 connects in one second.
    let big = no_ramp(1_000, 2);
    assert_eq!(big.ramp_up(), Duration::from_secs(10));
    // The value used is what the manifest records.
    assert_eq!(big.load.ramp_up, Some(HumanDuration::from_secs(10)));
    // The --sessions override counts; a ramp the profile gives is kept whatever the load.
    let o = ProfileOverrides {
        sessions: Some(3_000),
        ..Default::default()
    };
    // quick.toml leaves the ramp to the default: 3,000 × 2 connections over 30 s.
    assert_eq!(
        Profile::load_with_overrides(None, &o).unwrap().ramp_up(),
        Duration::from_secs(30)
    );
    let mut p = Profile::default();
    p.load.sessions = 600;
    assert_eq!(p.ramp_up(), Duration::from_secs(3));
    p.load.ramp_up = Some(HumanDuration::from_secs(0));
    assert_eq!(p.ramp_up(), Duration::ZERO);
}
