//! `engine`: the ad server.
