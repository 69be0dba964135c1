package assets

// Civil-calendar arithmetic on proleptic Gregorian dates, as plain integers. Day-based
// partitions (daily, weekly, monthly) live on the calendar of their timezone, not on
// the UTC time line, so their index arithmetic is done on civil day numbers; that keeps
// it O(1), allocation-free and immune to DST, which only matters when a window is turned
// into instants.

// daysFromCivil returns the number of days from 1970-01-01 to y-m-d.
// (Howard Hinnant's algorithm; valid far beyond any partition range.)
func daysFromCivil(y, m, d int) int {
	if m <= 2 {
		y--
	}
	era := floorDiv(y, 400)
	yoe := y - era*400
	mp := (m + 9) % 12
	doy := (153*mp+2)/5 + d - 1
	doe := yoe*365 + yoe/4 - yoe/100 + doy
	return era*146097 + doe - 719468
}

// civilFromDays is the inverse of daysFromCivil.
func civilFromDays(z int) (y, m, d int) {
	z += 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y = yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = doy - (153*mp+2)/5 + 1
	if mp < 10 {
		m = mp + 3
	} else {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	return y, m, d
}

// weekdayOfDay returns the ISO weekday of a civil day number: 0 = Monday … 6 = Sunday.
func weekdayOfDay(z int) int {
	// 1970-01-01 was a Thursday (ISO index 3).
	return floorMod(z+3, 7)
}

func floorDiv(a, b int) int {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func floorMod(a, b int) int {
	return a - floorDiv(a, b)*b
}
