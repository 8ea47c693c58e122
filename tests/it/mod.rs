mod channels;
mod cli;
mod data;
mod dynamics;
mod gradcheck;
mod layers;
mod reference;
mod training;
