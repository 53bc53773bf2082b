//! What the harness does to bytes in flight ([`FaultPlan`]: [`Split`], [`Delay`]), and
//! how sides and directions are named ([`Side`], [`Dir`]).

/// How the harness cuts bytes into pieces, both when it takes ciphertext out of a session
/// and when it hands wire bytes to the other one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Everything available at once.
    Whole,
    /// One byte per piece: every record arrives in as many calls as it has bytes.
    OneByte,
    /// A random non-empty prefix of what is available (uniform in `1..=available`).
    RandomPrefix,
}

/// Holding pieces back on the wire for a few steps. A held piece also holds every piece
/// behind it, so bytes are never reordered.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Delay {
    /// Chance that a piece is held at all.
    pub chance: f64,
    /// Most steps a piece is held (at least one when it is held).
    pub max_steps: u64,
}

/// The faults a [`Pair`](super::Pair) injects, chosen per piece by its seeded generator.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FaultPlan {
    /// How ciphertext is cut into pieces.
    pub split: Split,
    /// Whether and how long pieces are held back.
    pub delay: Option<Delay>,
}

impl FaultPlan {
    /// Whole outputs, delivered at once: the fastest plan, for bulk transfers.
    pub const CLEAN: Self = Self {
        split: Split::Whole,
        delay: None,
    };
    /// One byte at a time each way, no delays.
    pub const ONE_BYTE: Self = Self {
        split: Split::OneByte,
        delay: None,
    };
    /// Random prefixes, with a third of the pieces held for up to four steps.
    pub const RANDOM: Self = Self {
        split: Split::RandomPrefix,
        delay: Some(Delay {
            chance: 0.3,
            max_steps: 4,
        }),
    };

    pub(super) fn max_delay(&self) -> u64 {
        self.delay.map_or(0, |d| d.max_steps)
    }
}

impl Default for FaultPlan {
    fn default() -> Self {
        Self::CLEAN
    }
}

/// One end of a [`Pair`](super::Pair).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The client session.
    Client,
    /// The server session.
    Server,
}

impl Side {
    /// The other side.
    pub fn peer(self) -> Self {
        match self {
            Self::Client => Self::Server,
            Self::Server => Self::Client,
        }
    }
}

/// One direction of a [`Pair`](super::Pair)'s wires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dir {
    /// Client output to server input.
    ClientToServer,
    /// Server output to client input.
    ServerToClient,
}

impl Dir {
    /// Both directions.
    pub const BOTH: [Dir; 2] = [Dir::ClientToServer, Dir::ServerToClient];

    /// The direction in which `side` sends.
    pub fn from(side: Side) -> Self {
        match side {
            Side::Client => Self::ClientToServer,
            Side::Server => Self::ServerToClient,
        }
    }

    /// The side that writes into this direction.
    pub fn sender(self) -> Side {
        match self {
            Self::ClientToServer => Side::Client,
            Self::ServerToClient => Side::Server,
        }
    }

    /// The side that reads from this direction.
    pub fn receiver(self) -> Side {
        self.sender().peer()
    }

    /// The opposite direction.
    pub fn reverse(self) -> Self {
        Self::from(self.receiver())
    }

    pub(super) fn index(self) -> usize {
        match self {
            Self::ClientToServer => 0,
            Self::ServerToClient => 1,
        }
    }
}
