package actors

import "strconv"

func boolString(b bool) string { return strconv.FormatBool(b) }
func itoa(i int) string        { return strconv.Itoa(i) }
