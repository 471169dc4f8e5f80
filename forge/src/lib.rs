//! The forge loop: webhook deliveries in (verified as each forge signs
//! them) and notifications out (signed the same way).
