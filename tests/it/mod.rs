mod channels;
mod cli;
mod data;
mod dynamics;
mod gradcheck;
mod reference;
mod training;
