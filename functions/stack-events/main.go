// Command stack-events is apitap's stack-events Lambda function; see package lambdafn.
package main

import "github.com/apitap/apitap/internal/lambdafn"

func main() { lambdafn.Main("stack-events", (*lambdafn.Function).StackEvents) }
