"""Pure domain logic: the law and the company profile. No I/O, no clock, no globals."""
