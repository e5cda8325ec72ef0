// Command reconcile is apitap's reconcile Lambda function; see package lambdafn.
package main

import "github.com/apitap/apitap/internal/lambdafn"

func main() { lambdafn.Main("reconcile", (*lambdafn.Function).Reconcile) }
