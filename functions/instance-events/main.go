// Command instance-events is apitap's instance-events Lambda function; see package lambdafn.
package main

import "github.com/apitap/apitap/internal/lambdafn"

func main() { lambdafn.Main("instance-events", (*lambdafn.Function).InstanceEvents) }
