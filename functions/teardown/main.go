// Command teardown is apitap's teardown Lambda function; see package lambdafn.
package main

import "github.com/apitap/apitap/internal/lambdafn"

func main() { lambdafn.Main("teardown", (*lambdafn.Function).Teardown) }
