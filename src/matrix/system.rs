//! The canonical systems of the matrix: one name for each kind of host the
//! document talks about, however it spells it.
//!
//! The document names the same system many ways ("AACC/ACCS Server", "CCMS
//! Server", "AACC - Tomcat"…). Rules name their client and listening systems
//! with these canonical names, and a site file maps the same names to
//! addresses, so the two meet without any string matching on document text.
//! The list is a `const`: the rules loader and the site loader both validate
//! against it, and a set of systems is one `u64`, so checking a flow's roles
//! never allocates.

use serde::{Serialize, Serializer};

/// A canonical system, with the document's spellings it covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SystemInfo {
    pub name: &'static str,
    pub title: &'static str,
    /// How the document spells it (system cells, or the text where it appears).
    pub spellings: &'static str,
}

/// Every system a rule or a site file may name, `any` excepted. The order is
/// the bit order of [`SystemSet`] and the order systems are listed in.
pub const SYSTEMS: [SystemInfo; 21] = [
    SystemInfo {
        name: "aacc_server",
        title: "AACC/ACCS server: CCMS, SGM, CCT, Caché, License Manager, Contact Center Tomcat",
        spellings: "AACC/ACCS Server, AACC / ACCS, AACC/ACCS, AACC, CCMS, CCMS Server, CCMS ASM/TFE/EBWS, \
AACC - Tomcat, AACC - DAL, AACC - IIS, AACC/ACCS HA, AACC/ACCS HDX, AACC/ACCS Node, AACC/ACCS Networking, \
AACC/ACCS UNE, AACC/ACCS Web Statistics, AACC/ACCS OI - Open Networking, AACC / ACCS Cache, AACC / ACCS RSM, \
AACC/ACCS Desktop, TAO Naming Service, GigaSpaces, SGM, SIP Stack (SGM), SIP Stack (Agent Greeting Recorder / \
Announcement Recorder), AACC Agent Greeting, AACC Licensing/Prompt Management, License Manager, WebLM, Cache, \
Cache CCDSInstance, Cache System Management Portal, Management Client, JMX Client (OAM/SIP), SystemController, \
SMMCSERVICE.exe, Universal Networking",
    },
    SystemInfo {
        name: "cct",
        title: "Communication Control Toolkit server (on the AACC server, or standalone)",
        spellings: "AACC – CCT Server, AACC - CCT, AACC - CCT DAL, AACC – CCT OI, CCT Server, CCT Components, CMF Host",
    },
    SystemInfo {
        name: "ccma",
        title: "Contact Center Manager Administration server (IIS)",
        spellings: "IIS (CCMA) + IIS (CCMA Web Services), CCMA Server, CCMA ICEEmHlpService Service, \
CCMA IceRTDService Service, CCMA Historical Reporting",
    },
    SystemInfo {
        name: "ccmm",
        title: "Contact Center Multimedia server (IIS, Tomcat, Caché database, Ejabberd)",
        spellings: "CCMM, CCMM Server, Caché database (2.2.3), Tomcat (2.2.3), Ejabberd, \
Windows File and Printer Sharing for Microsoft Networks. (2.2.3), SMMService.exe",
    },
    SystemInfo {
        name: "aams",
        title: "Avaya Aura Media Server",
        spellings: "AAMS, AMS, Linux AAMS, Windows AAMS, AAMS on Red Hat Linux only, AAMS SC process, \
AAMS Content Store, AAMS IVRMP process, AAMS Web User Agent, AAMS SOAP interface, Element Manager on AAMS, \
MySql Server on AMS, AAMS Linux HA, AAMS HA System monitor, the AAMS internal components of 2.2.5, \
the blank system cells of 2.3.1 and the section 3 notes",
    },
    SystemInfo {
        name: "session_manager",
        title: "Avaya Aura Session Manager",
        spellings: "SM",
    },
    SystemInfo {
        name: "communication_manager",
        title: "Avaya Aura Communication Manager",
        spellings: "Communication Manager",
    },
    SystemInfo {
        name: "ip_office",
        title: "Avaya IP Office (ACCS)",
        spellings: "IP Office, IP O, IPO",
    },
    SystemInfo {
        name: "cs1k",
        title: "Avaya Communication Server 1000",
        spellings: "CS1K",
    },
    SystemInfo {
        name: "lync",
        title: "Microsoft Lync / Skype for Business server",
        spellings: "Lync, Microsoft Lync Server",
    },
    SystemInfo {
        name: "presence_server",
        title: "Avaya Aura Presence Server",
        spellings: "Avaya Presence Server (and 'Avaya Presense Server' in section 1.1)",
    },
    SystemInfo {
        name: "aes",
        title: "Avaya Aura Application Enablement Services",
        spellings: "AES (section 1.1 only: no port row names it; for site rules)",
    },
    SystemInfo {
        name: "pom",
        title: "Proactive Outreach Manager server",
        spellings: "POM Server",
    },
    SystemInfo {
        name: "predictive_server",
        title: "SER predictive dialer server",
        spellings: "Predictive sever",
    },
    SystemInfo {
        name: "sntp_server",
        title: "time server",
        spellings: "SNTP Server",
    },
    SystemInfo {
        name: "snmp_manager",
        title: "SNMP manager (queries agents, receives traps)",
        spellings: "SNMP Client",
    },
    SystemInfo {
        name: "ldap_server",
        title: "LDAP directory",
        spellings: "LDAP Server",
    },
    SystemInfo {
        name: "mail_server",
        title: "e-mail server (SMTP, POP3, IMAP)",
        spellings: "E-mail server, E-mail server POP3 over TLS, IMAP Server, the blank destination of 2.2.2#7",
    },
    SystemInfo {
        name: "workspaces",
        title: "Avaya Workspaces cluster node (Kubernetes)",
        spellings: "Workspaces, admin-adapter, kafka topics, istio, kubernetes dashboard, \
kubernetes api-server, etcd, kubelet",
    },
    SystemInfo {
        name: "agent_desktop",
        title: "agent or supervisor PC running Avaya Agent Desktop or a browser-based agent client",
        spellings: "Avaya Agent Desktop, AAD, Simple Browser Based Agent Client, the client PCs of 2.2.2#4-#6",
    },
    SystemInfo {
        name: "web_browser",
        title: "supervisor or administrator PC using CCMA in a browser",
        spellings: "Web Browser, where it names the PC receiving real-time display data (2.2.2#4-#6); \
as a client, 'Web Browser' is any",
    },
];

/// The name that stands for every system: the side is not checked.
pub const ANY: &str = "any";

/// How `any` is documented beside the real systems.
pub const ANY_SPELLINGS: &str = "blank cells and generic clients: 3rd Party Clients, Any Web services \
client, Web Browser (as a client), Internet Browser, SSH Client, Remote Desktop Client, Remote Media endpoints, \
CCT Client, CCT REST, Toolkit applications, CORBA applications, External Web Server";

/// One canonical system: an index into [`SYSTEMS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct System(u8);

impl System {
    /// The system called `name`, if the vocabulary has it (`any` is not a system).
    pub fn parse(name: &str) -> Option<System> {
        SYSTEMS
            .iter()
            .position(|s| s.name == name)
            .map(|i| System(i as u8))
    }

    pub fn as_str(self) -> &'static str {
        SYSTEMS[usize::from(self.0)].name
    }

    /// Position in [`SYSTEMS`], for per-system tables.
    pub fn index(self) -> usize {
        usize::from(self.0)
    }

    pub fn info(self) -> &'static SystemInfo {
        &SYSTEMS[usize::from(self.0)]
    }

    /// Every system, in vocabulary order.
    pub fn all() -> impl Iterator<Item = System> {
        (0..SYSTEMS.len()).map(|i| System(i as u8))
    }

    fn bit(self) -> u64 {
        1 << self.0
    }
}

impl std::fmt::Display for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A set of systems, or `any`: what a rule allows on one side of a flow, or
/// the roles a site gives one host. One word, so checks are a bitwise and.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SystemSet(u64);

impl SystemSet {
    /// No system: the roles of a host that is not in the inventory.
    pub const EMPTY: SystemSet = SystemSet(0);
    /// Every system: a rule side that is not checked.
    pub const ANY: SystemSet = SystemSet(u64::MAX);

    pub fn of(systems: impl IntoIterator<Item = System>) -> SystemSet {
        SystemSet(systems.into_iter().fold(0, |m, s| m | s.bit()))
    }

    pub fn is_any(self) -> bool {
        self == SystemSet::ANY
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn contains(self, s: System) -> bool {
        self.0 & s.bit() != 0
    }

    pub fn intersects(self, other: SystemSet) -> bool {
        self.0 & other.0 != 0
    }

    pub fn union(self, other: SystemSet) -> SystemSet {
        SystemSet(self.0 | other.0)
    }

    /// The systems in the set, in vocabulary order (none for `any`'s extra bits).
    pub fn iter(self) -> impl Iterator<Item = System> {
        System::all().filter(move |s| self.contains(*s))
    }

    /// `["aacc_server", "cct"]`, or `["any"]`.
    pub fn names(self) -> Vec<&'static str> {
        if self.is_any() {
            vec![ANY]
        } else {
            self.iter().map(System::as_str).collect()
        }
    }

    /// `aacc_server, cct` or `any`, for people.
    pub fn text(self) -> String {
        self.names().join(", ")
    }
}

/// Why a list of system names is not valid, for the loaders to place.
pub fn unknown_system_message(name: &str) -> String {
    let known: Vec<&str> = SYSTEMS.iter().map(|s| s.name).collect();
    format!(
        "unknown system `{name}`; known systems: {}, or `any` (see the rules file header)",
        known.join(", ")
    )
}

impl SystemSet {
    /// Read a list of names written in a file, each with its location `L`:
    /// canonical systems, or `any` alone. Every problem is returned, located.
    pub fn from_names<'a, L: Clone>(
        names: impl IntoIterator<Item = (&'a str, L)>,
        whole: L,
    ) -> Result<SystemSet, Vec<(L, String)>> {
        let mut set = SystemSet::EMPTY;
        let mut any = false;
        let mut count = 0;
        let mut errors = Vec::new();
        for (name, at) in names {
            count += 1;
            if name == ANY {
                any = true;
            } else if let Some(s) = System::parse(name) {
                set = set.union(SystemSet::of([s]));
            } else {
                errors.push((at, unknown_system_message(name)));
            }
        }
        if count == 0 {
            errors.push((
                whole,
                "at least one system is needed, e.g. [\"aacc_server\"], or [\"any\"]".into(),
            ));
        } else if any && count > 1 {
            errors.push((
                whole,
                "`any` already means every system: write it alone".into(),
            ));
        }
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(if any { SystemSet::ANY } else { set })
    }
}

impl Serialize for SystemSet {
    /// A list of names, `["any"]` for every system: the form rules files use.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.names())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_lower_case_and_fit_the_set() {
        assert!(SYSTEMS.len() <= 64);
        for (i, s) in SYSTEMS.iter().enumerate() {
            assert!(s
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_'));
            assert_ne!(s.name, ANY);
            assert_eq!(System::parse(s.name), Some(System(i as u8)));
        }
    }

    #[test]
    fn sets_check_with_one_and() {
        let aacc = System::parse("aacc_server").expect("known");
        let cct = System::parse("cct").expect("known");
        let aams = System::parse("aams").expect("known");
        let set = SystemSet::of([aacc, cct]);
        assert!(set.contains(aacc) && !set.contains(aams));
        assert!(set.intersects(SystemSet::of([cct])));
        assert!(!set.intersects(SystemSet::of([aams])));
        assert!(SystemSet::ANY.intersects(set));
        assert_eq!(set.names(), ["aacc_server", "cct"]);
        assert_eq!(SystemSet::ANY.names(), ["any"]);
        assert_eq!(System::parse("any"), None);
        assert!(SystemSet::EMPTY.is_empty());
    }

    #[test]
    fn lists_of_names_are_validated_with_their_locations() {
        let ok = SystemSet::from_names([("ccma", 1), ("aams", 2)], 0).expect("valid");
        assert_eq!(ok.names(), ["ccma", "aams"]);
        assert_eq!(SystemSet::from_names([("any", 1)], 0), Ok(SystemSet::ANY));
        let errs = SystemSet::from_names([("ccms", 1), ("aams", 2), ("bogus", 3)], 0)
            .expect_err("unknown names");
        assert_eq!(errs.len(), 2);
        assert_eq!(errs[0].0, 1);
        assert!(errs[0].1.contains("unknown system `ccms`"), "{}", errs[0].1);
        assert_eq!(errs[1].0, 3);
        let errs = SystemSet::from_names([("any", 1), ("aams", 2)], 0).expect_err("any alone");
        assert_eq!(errs[0].0, 0);
        assert!(SystemSet::from_names(std::iter::empty::<(&str, u8)>(), 0).is_err());
    }
}
