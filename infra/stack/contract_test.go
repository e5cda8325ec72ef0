package stack_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/apitap/apitap/internal/contract"
	"github.com/apitap/apitap/internal/lambdafn"
	"github.com/apitap/apitap/internal/stackconfig"
)

// What the stack writes must be what the binaries read: the functions'
// environment goes through the functions' own parser, and the sniffer's
// environment file through the sniffer's own flag parser.

// resolve replaces the template's intrinsic functions in a function's
// environment with values of the kind CloudFormation would put there.
func resolve(t *testing.T, s *synthesized, v any) string {
	t.Helper()
	switch v := v.(type) {
	case string:
		return v
	case map[string]any:
		if ref, ok := v["Ref"].(string); ok {
			if ref == "AWS::AccountId" {
				return account
			}
			if r, ok := s.model.Resources[ref]; ok {
				switch r.Type {
				case "AWS::EC2::TrafficMirrorTarget":
					return "tmt-0123456789abcdef0"
				case "AWS::EC2::TrafficMirrorFilter":
					return "tmf-0123456789abcdef0"
				case "AWS::ElasticLoadBalancingV2::LoadBalancer":
					return fmt.Sprintf("arn:aws:elasticloadbalancing:%s:%s:loadbalancer/net/%s/0123456789abcdef", region, account, r.Properties["Name"])
				}
			}
		}
	}
	if r, ok := render(t, s, v).(string); ok {
		return r
	}
	t.Fatalf("environment value %v: no stand-in for it", jsonOf(v))
	return ""
}

func TestFunctionEnvironmentParses(t *testing.T) {
	for _, variant := range []string{"full", "scram"} {
		s := synth(t, variant)
		for id, f := range s.ofType("AWS::Lambda::Function") {
			vars := f["Environment"].(map[string]any)["Variables"].(map[string]any)
			env := map[string]string{contract.EnvRegion: region} // set by Lambda itself
			var keys []string
			for k, v := range vars {
				env[k] = resolve(t, s, v)
				keys = append(keys, k)
			}
			sort.Strings(keys)
			want := slices.Sorted(slices.Values(contract.FunctionEnv))
			if strings.HasPrefix(id, "PreflightFunction") {
				// Preflight checks the whole configuration: it gets it,
				// and reads it back as the configuration it was made from.
				want = slices.Sorted(slices.Values(append(slices.Clone(contract.FunctionEnv), contract.EnvConfig)))
				var got stackconfig.Config
				if err := json.Unmarshal([]byte(env[contract.EnvConfig]), &got); err != nil || !reflect.DeepEqual(got, s.cfg) {
					t.Errorf("%s: %s reads back as %+v (%v), want %+v", variant, contract.EnvConfig, got, err, s.cfg)
				}
			}
			if !slices.Equal(keys, want) {
				t.Errorf("%s %s: environment %v, want exactly %v", variant, id, keys, want)
			}
			cfg, err := lambdafn.ConfigFromEnv(func(k string) string { return env[k] })
			if err != nil {
				t.Fatalf("%s %s: the functions refuse the stack's environment: %v", variant, id, err)
			}
			c := s.cfg
			switch {
			case cfg.Mirror.StackName != c.StackName, cfg.VPCID != c.VPCID, cfg.Region != region, cfg.AccountID != account,
				!slices.Equal(cfg.LBARNs, c.LoadBalancerARNs), fmt.Sprint(cfg.LBTags) != fmt.Sprint(c.LoadBalancerTags),
				cfg.Mirror.SessionNumber != int32(c.SessionNumber), string(cfg.Mirror.Conflict) != c.ConflictPolicy,
				cfg.Mirror.TargetID != "tmt-0123456789abcdef0", cfg.Mirror.FilterID != "tmf-0123456789abcdef0",
				!strings.Contains(cfg.MirrorNLBARN, ":loadbalancer/net/"+s.st.Names.LoadBalancer+"/"):
				t.Errorf("%s %s: the functions read %+v from the stack's environment %v", variant, id, cfg, env)
			}
		}
	}
}

func TestSnifferEnvironmentParses(t *testing.T) {
	for _, variant := range []string{"full", "scram"} {
		s := synth(t, variant)
		lines := s.cfg.SnifferEnvLines()
		if ud := userData(t, s); !strings.Contains(ud, strings.Join(lines, "\n")+"\n") {
			t.Fatalf("%s: the user data does not write SnifferEnvLines as the environment file", variant)
		}
		env := map[string]string{}
		for _, l := range lines {
			k, v, _ := strings.Cut(l, "=")
			env[k] = v
		}
		if variant == "scram" {
			// What the boot script appends from Secrets Manager, as
			// systemd reads it (quotes removed).
			env[contract.SnifferEnv(contract.SnifferFlagUsername)] = "apitap"
			env[contract.SnifferEnv(contract.SnifferFlagPassword)] = `pa"ss`
		}
		cmd := exec.Command("go", "run", "../../sniffer", "-check-config")
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, contract.SnifferEnvPrefix) {
				cmd.Env = append(cmd.Env, kv)
			}
		}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("%s: the sniffer refuses the stack's environment file: %v\n%s", variant, err, stderr.String())
		}
		effective := map[string]string{}
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			k, v, _ := strings.Cut(l, "=")
			effective[k] = v
		}
		for k, v := range env {
			if !strings.HasPrefix(k, contract.SnifferEnvPrefix) {
				continue
			}
			got, known := effective[k]
			if k == contract.SnifferEnv(contract.SnifferFlagPassword) {
				v = "****"
			}
			if !known {
				t.Errorf("%s: the environment file sets %s, which is no sniffer flag", variant, k)
			} else if got != v && !sameBool(got, v) {
				t.Errorf("%s: %s=%q in the environment file, the sniffer took %q", variant, k, v, got)
			}
		}
	}
}

func sameBool(a, b string) bool {
	x, err1 := strconv.ParseBool(a)
	y, err2 := strconv.ParseBool(b)
	return err1 == nil && err2 == nil && x == y
}
