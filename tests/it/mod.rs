mod channels;
mod cli;
mod data;
mod gradcheck;
mod reference;
mod training;
