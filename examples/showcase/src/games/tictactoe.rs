//! Tic-tac-toe: the rules, and the games in play on this process.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use serde::Serialize;

/// The most games kept at once; finished games make room for new ones.
pub const MAX_GAMES: usize = 1000;

/// The lines that win.
const LINES: [[usize; 3]; 8] = [
    [0, 1, 2],
    [3, 4, 5],
    [6, 7, 8],
    [0, 3, 6],
    [1, 4, 7],
    [2, 5, 8],
    [0, 4, 8],
    [2, 4, 6],
];

/// A player's mark; X moves first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Mark {
    X,
    O,
}

impl Mark {
    fn other(self) -> Self {
        match self {
            Self::X => Self::O,
            Self::O => Self::X,
        }
    }
}

/// Where a game is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// X waits for an opponent.
    Waiting,
    Playing,
    /// Three in a row: the winner and the line.
    Won {
        winner: Mark,
        line: [usize; 3],
    },
    Draw,
}

/// Why a move or a request is refused: a stable code for programs and a
/// sentence for people.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoSuchGame,
    Spectator,
    Waiting,
    GameOver,
    NotYourTurn,
    BadCell,
    CellTaken,
    TooManyGames,
}

impl Refusal {
    /// The code in the consumer's reply.
    #[must_use]
    pub fn code(self) -> &'static str {
        match self {
            Self::NoSuchGame => "no_such_game",
            Self::Spectator => "spectator",
            Self::Waiting => "waiting",
            Self::GameOver => "game_over",
            Self::NotYourTurn => "not_your_turn",
            Self::BadCell => "bad_cell",
            Self::CellTaken => "cell_taken",
            Self::TooManyGames => "too_many_games",
        }
    }

    /// What to tell the player.
    #[must_use]
    pub fn message(self) -> &'static str {
        match self {
            Self::NoSuchGame => "there is no such game",
            Self::Spectator => "spectators cannot move",
            Self::Waiting => "wait for an opponent to join",
            Self::GameOver => "the game is over",
            Self::NotYourTurn => "it is not your turn",
            Self::BadCell => "a cell is numbered 0 to 8",
            Self::CellTaken => "that cell is taken",
            Self::TooManyGames => "too many games are in play; try again later",
        }
    }
}

/// One game, as clients see it too.
#[derive(Clone, Debug, Serialize)]
pub struct Game {
    pub id: u64,
    /// The players' usernames: X, then O once someone joined.
    pub x: String,
    pub o: Option<String>,
    pub board: [Option<Mark>; 9],
    pub turn: Mark,
    pub status: Status,
    /// Grows with every change: a client keeps the state with the highest.
    pub seq: u64,
}

impl Game {
    fn new(id: u64, x: &str) -> Self {
        Self {
            id,
            x: x.to_owned(),
            o: None,
            board: [None; 9],
            turn: Mark::X,
            status: Status::Waiting,
            seq: 1,
        }
    }

    /// The mark `user` plays, if they are a player.
    #[must_use]
    pub fn mark_of(&self, user: &str) -> Option<Mark> {
        if self.x == user {
            Some(Mark::X)
        } else if self.o.as_deref() == Some(user) {
            Some(Mark::O)
        } else {
            None
        }
    }

    /// "X", "O" or "spectator".
    #[must_use]
    pub fn role_of(&self, user: Option<&str>) -> &'static str {
        match user.and_then(|user| self.mark_of(user)) {
            Some(Mark::X) => "X",
            Some(Mark::O) => "O",
            None => "spectator",
        }
    }

    fn is_over(&self) -> bool {
        matches!(self.status, Status::Won { .. } | Status::Draw)
    }

    /// `user` puts their mark in `cell`, if the rules allow it.
    ///
    /// # Errors
    ///
    /// The rule the move breaks, checked in this order: players only, game
    /// started, game not over, turn, cell.
    pub fn play(&mut self, user: &str, cell: usize) -> Result<(), Refusal> {
        let mark = self.mark_of(user).ok_or(Refusal::Spectator)?;
        match self.status {
            Status::Waiting => return Err(Refusal::Waiting),
            Status::Won { .. } | Status::Draw => return Err(Refusal::GameOver),
            Status::Playing => {}
        }
        if mark != self.turn {
            return Err(Refusal::NotYourTurn);
        }
        let square = self.board.get_mut(cell).ok_or(Refusal::BadCell)?;
        if square.is_some() {
            return Err(Refusal::CellTaken);
        }
        *square = Some(mark);
        self.seq += 1;
        self.turn = mark.other();
        let won = LINES
            .iter()
            .find(|line| line.iter().all(|&i| self.board[i] == Some(mark)));
        if let Some(line) = won {
            self.status = Status::Won {
                winner: mark,
                line: *line,
            };
        } else if self.board.iter().all(Option::is_some) {
            self.status = Status::Draw;
        }
        Ok(())
    }
}

/// The games of this process.
#[derive(Debug, Default)]
pub struct Games(Mutex<Inner>);

#[derive(Debug, Default)]
struct Inner {
    games: BTreeMap<u64, Game>,
    next_id: u64,
}

impl Games {
    /// A std mutex, not a Tokio one: nothing awaits while it is held.
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A copy of game `id`.
    #[must_use]
    pub fn get(&self, id: u64) -> Option<Game> {
        self.lock().games.get(&id).cloned()
    }

    /// The newest games first, at most `limit`.
    #[must_use]
    pub fn latest(&self, limit: usize) -> Vec<Game> {
        self.lock()
            .games
            .values()
            .rev()
            .take(limit)
            .cloned()
            .collect()
    }

    /// A game for `user`: the one they already wait in, else the oldest
    /// game waiting for an opponent (which starts), else a new one. The
    /// flag says whether a waiting game just started.
    ///
    /// # Errors
    ///
    /// [`Refusal::TooManyGames`] when [`MAX_GAMES`] are in play.
    pub fn find(&self, user: &str) -> Result<(Game, bool), Refusal> {
        let mut inner = self.lock();
        let waiting = |game: &&mut Game| game.status == Status::Waiting;
        if let Some(mine) = inner
            .games
            .values_mut()
            .filter(waiting)
            .find(|game| game.x == user)
        {
            return Ok((mine.clone(), false));
        }
        if let Some(game) = inner
            .games
            .values_mut()
            .find(|game| game.status == Status::Waiting)
        {
            game.o = Some(user.to_owned());
            game.status = Status::Playing;
            game.seq += 1;
            return Ok((game.clone(), true));
        }
        if inner.games.len() >= MAX_GAMES {
            // The oldest finished game makes room.
            let finished = inner
                .games
                .iter()
                .find(|(_, game)| game.is_over())
                .map(|(&id, _)| id);
            match finished {
                Some(id) => inner.games.remove(&id),
                None => return Err(Refusal::TooManyGames),
            };
        }
        inner.next_id += 1;
        let game = Game::new(inner.next_id, user);
        inner.games.insert(game.id, game.clone());
        Ok((game, false))
    }

    /// A move by `user` in game `id`; the game as it is after it.
    ///
    /// # Errors
    ///
    /// The [`Refusal`] of [`Game::play`], or [`Refusal::NoSuchGame`].
    pub fn play(&self, id: u64, user: &str, cell: usize) -> Result<Game, Refusal> {
        let mut inner = self.lock();
        let game = inner.games.get_mut(&id).ok_or(Refusal::NoSuchGame)?;
        game.play(user, cell)?;
        Ok(game.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn started() -> Game {
        let games = Games::default();
        games.find("x").ok();
        games
            .find("o")
            .map(|(game, _)| game)
            .unwrap_or_else(|_| Game::new(0, ""))
    }

    #[test]
    fn x_wins_a_row_and_nothing_moves_after() {
        let mut game = started();
        for (user, cell) in [("x", 0), ("o", 3), ("x", 1), ("o", 4), ("x", 2)] {
            assert_eq!(game.play(user, cell), Ok(()), "{user} {cell}");
        }
        assert_eq!(
            game.status,
            Status::Won {
                winner: Mark::X,
                line: [0, 1, 2]
            }
        );
        assert_eq!(game.play("o", 5), Err(Refusal::GameOver));
    }

    #[test]
    fn a_full_board_without_a_line_is_a_draw() {
        let mut game = started();
        for (user, cell) in [
            ("x", 0),
            ("o", 1),
            ("x", 2),
            ("o", 4),
            ("x", 3),
            ("o", 5),
            ("x", 7),
            ("o", 6),
            ("x", 8),
        ] {
            assert_eq!(game.play(user, cell), Ok(()), "{user} {cell}");
        }
        assert_eq!(game.status, Status::Draw);
    }

    #[test]
    fn the_rules_refuse_in_order() {
        let games = Games::default();
        let (waiting, _) = games.find("x").unwrap_or_else(|_| unreachable!());
        assert_eq!(games.play(waiting.id, "x", 0).err(), Some(Refusal::Waiting));
        let (game, started) = games.find("o").unwrap_or_else(|_| unreachable!());
        assert!(started);
        assert_eq!(game.id, waiting.id);
        assert_eq!(
            games.play(game.id, "eve", 0).err(),
            Some(Refusal::Spectator)
        );
        assert_eq!(
            games.play(game.id, "o", 0).err(),
            Some(Refusal::NotYourTurn)
        );
        assert_eq!(games.play(game.id, "x", 9).err(), Some(Refusal::BadCell));
        assert!(games.play(game.id, "x", 4).is_ok());
        assert_eq!(games.play(game.id, "o", 4).err(), Some(Refusal::CellTaken));
        assert_eq!(games.play(99, "o", 4).err(), Some(Refusal::NoSuchGame));
    }
}
