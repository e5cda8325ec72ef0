package awssim

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// DynamoDB, as far as diagnosis uses it: a de-duplication store of tables
// with a string hash key, written with PutItem and DeleteItem under an
// existence condition, read with GetItem and Scan. The SDK's dynamodb
// client (v1.74.1) speaks awsJson1_0: a POST with X-Amz-Target
// DynamoDB_20120810.<Action>, Content-Type application/x-amz-json-1.0.
// Responses carry X-Amz-Crc32, which the client checks.
//
// Tables are made from Go (Account.AddTable): CreateTable, Query, UpdateItem,
// the batch and transaction calls are not modelled, and nor are sort
// keys, indexes, capacity, TTL or streams.
var dynamodbService = service{
	name:        "dynamodb",
	protocol:    protoJSON,
	target:      "DynamoDB_20120810",
	jsonVersion: "1.0",
	crc32:       true,
	bodyActions: map[string]bodyHandler{
		"PutItem":    putItem,
		"GetItem":    getItem,
		"DeleteItem": deleteItem,
		"Scan":       scan,
	},
	mutating: map[string]bool{"PutItem": true, "DeleteItem": true},
	// DynamoDB's common errors:
	// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/CommonErrors.html
	// (ThrottlingException and AccessDeniedException, both HTTP 400).
	throttle: errf(400, "ThrottlingException", "Rate of requests exceeds the allowed throughput."),
	denied:   errf(400, "AccessDeniedException", ""),
}

// DynamoDB error codes (each action's Errors section; ValidationException
// is a common error).
const (
	CodeDDBResourceNotFound = "ResourceNotFoundException"
	CodeDDBConditionFailed  = "ConditionalCheckFailedException"
	CodeDDBValidation       = "ValidationException"
)

// Limits DynamoDB documents: an item of at most 400 KB
// (https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/ServiceQuotas.html#limits-items)
// and a Scan page of at most 1 MB (API_Scan.html). The account measures an
// item by the length of its attribute names and of their JSON values, not
// by DynamoDB's exact rules.
const (
	ddbMaxItemBytes = 400 * 1024
	ddbMaxPageBytes = 1 << 20
)

type ddbItem map[string]json.RawMessage

type table struct {
	name, hashKey string
	items         ordered[ddbItem] // by hash key value
}

func (s *state) tableARN(name string) string {
	return fmt.Sprintf("arn:aws:dynamodb:%s:%s:table/%s", s.a.opts.Region, s.a.opts.AccountID, name)
}

// findTable takes a table name or ARN (TableName accepts both).
func (s *state) findTable(nameOrARN string) (*table, error) {
	name := nameOrARN
	if rest, ok := strings.CutPrefix(nameOrARN, "arn:"); ok {
		_, name, _ = strings.Cut(rest, ":table/")
		if nameOrARN != s.tableARN(name) {
			name = ""
		}
	}
	if name == "" {
		return nil, badRequest(CodeDDBValidation, "1 validation error detected: Value null at 'tableName' failed to satisfy constraint: Member must not be null")
	}
	t, ok := s.tables[name]
	if !ok {
		return nil, badRequest(CodeDDBResourceNotFound, "Requested resource not found")
	}
	return t, nil
}

// decodeDDB reads a request into v after checking that it names only the
// fields allowed: a field the account does not model is refused with
// ValidationException rather than ignored, so that a caller never relies
// on behaviour the account does not have.
func decodeDDB(action string, body []byte, allowed []string, v any) error {
	var fields map[string]json.RawMessage
	if err := decodeJSON(body, &fields); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(fields)) {
		if !slices.Contains(allowed, k) && string(fields[k]) != "null" {
			return badRequest(CodeDDBValidation, "awssim does not model %s in %s", k, action)
		}
	}
	return decodeJSON(body, v)
}

// attrValue checks one AttributeValue (exactly one of S, N, B, BOOL,
// NULL, M, L, SS, NS, BS) and returns its type and the JSON of its value.
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_AttributeValue.html
func attrValue(raw json.RawMessage) (typ string, val json.RawMessage, err error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) != 1 {
		return "", nil, badRequest(CodeDDBValidation, "Supplied AttributeValue has more than one datatypes set, must contain exactly one of the supported datatypes")
	}
	for k, v := range m {
		typ, val = k, v
	}
	bad := func() (string, json.RawMessage, error) {
		return "", nil, badRequest(CodeDDBValidation, "One or more parameter values were invalid: invalid %s value %s", typ, val)
	}
	switch typ {
	case "S":
		var s string
		if json.Unmarshal(val, &s) != nil {
			return bad()
		}
	case "N":
		var s string
		if json.Unmarshal(val, &s) != nil {
			return bad()
		}
		if _, err := strconv.ParseFloat(s, 64); err != nil {
			return "", nil, badRequest(CodeDDBValidation, "The parameter cannot be converted to a numeric value: %s", s)
		}
	case "B":
		var s string
		if json.Unmarshal(val, &s) != nil {
			return bad()
		}
		if _, err := base64.StdEncoding.DecodeString(s); err != nil {
			return bad()
		}
	case "BOOL":
		var b bool
		if json.Unmarshal(val, &b) != nil {
			return bad()
		}
	case "NULL":
		var b bool
		if json.Unmarshal(val, &b) != nil || !b {
			return "", nil, badRequest(CodeDDBValidation, "One or more parameter values were invalid: Null attribute value types must have the value of true")
		}
	case "M":
		var mm map[string]json.RawMessage
		if json.Unmarshal(val, &mm) != nil || mm == nil {
			return bad()
		}
		for _, v := range mm {
			if _, _, err := attrValue(v); err != nil {
				return "", nil, err
			}
		}
	case "L":
		var l []json.RawMessage
		if json.Unmarshal(val, &l) != nil || l == nil {
			return bad()
		}
		for _, v := range l {
			if _, _, err := attrValue(v); err != nil {
				return "", nil, err
			}
		}
	case "SS", "NS", "BS":
		var set []string
		if json.Unmarshal(val, &set) != nil {
			return bad()
		}
		if len(set) == 0 {
			return "", nil, badRequest(CodeDDBValidation, "One or more parameter values were invalid: An %s set may not be empty", typ)
		}
		if len(slices.Compact(slices.Sorted(slices.Values(set)))) != len(set) {
			return "", nil, badRequest(CodeDDBValidation, "One or more parameter values were invalid: Input collection %s contains duplicates.", val)
		}
	default:
		return "", nil, badRequest(CodeDDBValidation, "Supplied AttributeValue is empty, must contain exactly one of the supported datatypes")
	}
	return typ, val, nil
}

// keyValue returns the string value of the table's hash key in an item or
// in a Key map. Errors are DynamoDB's ValidationException messages for a
// missing, mistyped or empty key.
func (t *table) keyValue(m ddbItem, isKey bool) (string, error) {
	if isKey && len(m) != 1 {
		return "", badRequest(CodeDDBValidation, "The provided key element does not match the schema")
	}
	raw, ok := m[t.hashKey]
	if !ok {
		if isKey {
			return "", badRequest(CodeDDBValidation, "The provided key element does not match the schema")
		}
		return "", badRequest(CodeDDBValidation, "One or more parameter values were invalid: Missing the key %s in the item", t.hashKey)
	}
	typ, val, err := attrValue(raw)
	if err != nil {
		return "", err
	}
	if typ != "S" {
		if isKey {
			return "", badRequest(CodeDDBValidation, "The provided key element does not match the schema")
		}
		return "", badRequest(CodeDDBValidation, "One or more parameter values were invalid: Type mismatch for key %s expected: S actual: %s", t.hashKey, typ)
	}
	var k string
	_ = json.Unmarshal(val, &k)
	if k == "" {
		return "", badRequest(CodeDDBValidation, "One or more parameter values are not valid. The AttributeValue for a key attribute cannot contain an empty string value. Key: %s", t.hashKey)
	}
	return k, nil
}

func itemSize(m ddbItem) int {
	n := 0
	for k, v := range m {
		n += len(k) + len(v)
	}
	return n
}

// compactItem checks every attribute and stores them in compact JSON.
func compactItem(m ddbItem) (ddbItem, error) {
	out := make(ddbItem, len(m))
	for k, v := range m {
		if k == "" {
			return nil, badRequest(CodeDDBValidation, "One or more parameter values were invalid: An attribute name cannot be empty")
		}
		if _, _, err := attrValue(v); err != nil {
			return nil, err
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, badRequest(CodeDDBValidation, "%v", err)
		}
		out[k] = buf.Bytes()
	}
	return out, nil
}

// condition is a ConditionExpression of the one form the account models:
// attribute_exists(path) or attribute_not_exists(path), path a top-level
// attribute name or an #name from ExpressionAttributeNames.
// https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/Expressions.OperatorsAndFunctions.html
type condition struct {
	exists bool
	attr   string
}

var conditionRE = regexp.MustCompile(`^\s*(attribute_exists|attribute_not_exists)\s*\(\s*(#?[A-Za-z0-9_]+)\s*\)\s*$`)

type exprParams struct {
	ConditionExpression       *string                    `json:"ConditionExpression"`
	ExpressionAttributeNames  map[string]string          `json:"ExpressionAttributeNames"`
	ExpressionAttributeValues map[string]json.RawMessage `json:"ExpressionAttributeValues"`
}

var exprFields = []string{"ConditionExpression", "ExpressionAttributeNames", "ExpressionAttributeValues"}

// parse returns the condition, nil when there is none. Any other
// expression is refused with ValidationException: the account does not
// model it. Unused or undefined names and values are refused as DynamoDB
// refuses them.
func (p exprParams) parse() (*condition, error) {
	if p.ConditionExpression == nil {
		if len(p.ExpressionAttributeNames) > 0 {
			return nil, badRequest(CodeDDBValidation, "ExpressionAttributeNames can only be specified when using expressions")
		}
		if len(p.ExpressionAttributeValues) > 0 {
			return nil, badRequest(CodeDDBValidation, "ExpressionAttributeValues can only be specified when using expressions")
		}
		return nil, nil
	}
	expr := *p.ConditionExpression
	if strings.TrimSpace(expr) == "" {
		return nil, badRequest(CodeDDBValidation, "Invalid ConditionExpression: The expression can not be empty;")
	}
	m := conditionRE.FindStringSubmatch(expr)
	if m == nil {
		return nil, badRequest(CodeDDBValidation, "awssim does not model the ConditionExpression %q: it models attribute_exists(<name>) and attribute_not_exists(<name>) only", expr)
	}
	c := &condition{exists: m[1] == "attribute_exists", attr: m[2]}
	for name := range p.ExpressionAttributeNames {
		if name != m[2] {
			return nil, badRequest(CodeDDBValidation, "Value provided in ExpressionAttributeNames unused in expressions: keys: {%s}", name)
		}
	}
	if len(p.ExpressionAttributeValues) > 0 {
		keys := slices.Sorted(maps.Keys(p.ExpressionAttributeValues))
		return nil, badRequest(CodeDDBValidation, "Value provided in ExpressionAttributeValues unused in expressions: keys: {%s}", strings.Join(keys, ", "))
	}
	if strings.HasPrefix(c.attr, "#") {
		name, ok := p.ExpressionAttributeNames[c.attr]
		if !ok {
			return nil, badRequest(CodeDDBValidation, "Invalid ConditionExpression: An expression attribute name used in the document path is not defined; attribute name: %s", c.attr)
		}
		c.attr = name
	}
	return c, nil
}

// holds says whether the condition is true of the item now stored (nil:
// none).
func (c *condition) holds(old ddbItem) bool {
	if c == nil {
		return true
	}
	_, has := old[c.attr]
	return has == c.exists
}

// conditionFailed is ConditionalCheckFailedException, with the item when
// ReturnValuesOnConditionCheckFailure is ALL_OLD.
func conditionFailed(old ddbItem, returnOld bool) error {
	e := badRequest(CodeDDBConditionFailed, "The conditional request failed")
	if returnOld && old != nil {
		e.fields = map[string]any{"Item": old}
	}
	return e
}

func returnValues(action, v string, allowed ...string) error {
	if v == "" || slices.Contains(allowed, v) {
		return nil
	}
	return badRequest(CodeDDBValidation, "awssim does not model ReturnValues %s in %s (it models %s)", v, action, strings.Join(allowed, ", "))
}

func onConditionFailure(v string) (bool, error) {
	switch v {
	case "", "NONE":
		return false, nil
	case "ALL_OLD":
		return true, nil
	}
	return false, badRequest(CodeDDBValidation, "1 validation error detected: Value '%s' at 'returnValuesOnConditionCheckFailure' failed to satisfy constraint: Member must satisfy enum value set: [ALL_OLD, NONE]", v)
}

// ReturnConsumedCapacity and ReturnItemCollectionMetrics are accepted and
// answered with nothing: the account models no capacity.
var ddbIgnored = []string{"ReturnConsumedCapacity", "ReturnItemCollectionMetrics"}

// writeParams are what PutItem and DeleteItem share: the table, what to
// return, and the condition.
type writeParams struct {
	TableName                           string `json:"TableName"`
	ReturnValues                        string `json:"ReturnValues"`
	ReturnValuesOnConditionCheckFailure string `json:"ReturnValuesOnConditionCheckFailure"`
	exprParams
}

var writeFields = append([]string{"TableName", "ReturnValues", "ReturnValuesOnConditionCheckFailure"}, append(exprFields, ddbIgnored...)...)

// prepare checks a write's shared parameters: it returns the table, whether
// a failed condition returns the old item, and the condition.
func (w *writeParams) prepare(s *state, op string) (*table, bool, *condition, error) {
	t, err := s.findTable(w.TableName)
	if err != nil {
		return nil, false, nil, err
	}
	if err := returnValues(op, w.ReturnValues, "NONE", "ALL_OLD"); err != nil {
		return nil, false, nil, err
	}
	returnOld, err := onConditionFailure(w.ReturnValuesOnConditionCheckFailure)
	if err != nil {
		return nil, false, nil, err
	}
	cond, err := w.parse()
	if err != nil {
		return nil, false, nil, err
	}
	return t, returnOld, cond, nil
}

// answer is a successful write's answer: the old item with ALL_OLD.
func (w *writeParams) answer(old ddbItem) (any, error) {
	if w.ReturnValues == "ALL_OLD" {
		return &attributesOut{Attributes: old}, nil
	}
	return &attributesOut{}, nil
}

type putItemIn struct {
	Item ddbItem `json:"Item"`
	writeParams
}

type attributesOut struct {
	Attributes ddbItem `json:"Attributes,omitempty"`
}

// putItem stores an item, replacing the one with the same key, when the
// condition (if any) holds of the item stored now; else
// ConditionalCheckFailedException. ReturnValues NONE or ALL_OLD.
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_PutItem.html
func putItem(s *state, body []byte) (any, error) {
	var in putItemIn
	if err := decodeDDB("PutItem", body, append([]string{"Item"}, writeFields...), &in); err != nil {
		return nil, err
	}
	t, returnOld, cond, err := in.prepare(s, "PutItem")
	if err != nil {
		return nil, err
	}
	item, err := compactItem(in.Item)
	if err != nil {
		return nil, err
	}
	key, err := t.keyValue(item, false)
	if err != nil {
		return nil, err
	}
	if itemSize(item) > ddbMaxItemBytes {
		return nil, badRequest(CodeDDBValidation, "Item size has exceeded the maximum allowed size")
	}
	old, _ := t.items.get(key)
	if !cond.holds(old) {
		return nil, conditionFailed(old, returnOld)
	}
	t.items.put(key, item)
	return in.answer(old)
}

type getItemIn struct {
	TableName      string  `json:"TableName"`
	Key            ddbItem `json:"Key"`
	ConsistentRead bool    `json:"ConsistentRead"`
}

type getItemOut struct {
	Item ddbItem `json:"Item,omitempty"`
}

// getItem answers with the item, or with no Item when there is none. Every
// read is consistent: the account has one copy of each item.
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_GetItem.html
func getItem(s *state, body []byte) (any, error) {
	var in getItemIn
	if err := decodeDDB("GetItem", body, append([]string{"TableName", "Key", "ConsistentRead"}, ddbIgnored...), &in); err != nil {
		return nil, err
	}
	t, err := s.findTable(in.TableName)
	if err != nil {
		return nil, err
	}
	key, err := t.keyValue(in.Key, true)
	if err != nil {
		return nil, err
	}
	item, _ := t.items.get(key)
	return &getItemOut{Item: item}, nil
}

type deleteItemIn struct {
	Key ddbItem `json:"Key"`
	writeParams
}

// deleteItem removes an item when the condition (if any) holds of it;
// deleting an item that is not there succeeds unless a condition says
// otherwise. ReturnValues NONE or ALL_OLD.
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_DeleteItem.html
func deleteItem(s *state, body []byte) (any, error) {
	var in deleteItemIn
	if err := decodeDDB("DeleteItem", body, append([]string{"Key"}, writeFields...), &in); err != nil {
		return nil, err
	}
	t, returnOld, cond, err := in.prepare(s, "DeleteItem")
	if err != nil {
		return nil, err
	}
	key, err := t.keyValue(in.Key, true)
	if err != nil {
		return nil, err
	}
	old, _ := t.items.get(key)
	if !cond.holds(old) {
		return nil, conditionFailed(old, returnOld)
	}
	t.items.del(key)
	return in.answer(old)
}

type scanIn struct {
	TableName         string  `json:"TableName"`
	Limit             *int32  `json:"Limit"`
	ExclusiveStartKey ddbItem `json:"ExclusiveStartKey"`
	ConsistentRead    bool    `json:"ConsistentRead"`
	Select            string  `json:"Select"`
}

type scanOut struct {
	Items            any     `json:"Items,omitempty"` // []ddbItem; nil for Select COUNT
	Count            int     `json:"Count"`
	ScannedCount     int     `json:"ScannedCount"`
	LastEvaluatedKey ddbItem `json:"LastEvaluatedKey,omitempty"`
}

// scan pages through a table in the order of its hash key values (AWS's
// order is by hash, which no caller may rely on). A page ends after Limit
// items or 1 MB; LastEvaluatedKey is then the key of its last item, even
// when no item follows, as the reference warns ("If LastEvaluatedKey is
// not empty, it does not necessarily mean that there is more data"): the
// next page is then empty. ExclusiveStartKey need not name an item that
// still exists. Select ALL_ATTRIBUTES or COUNT; filters, projections and
// parallel scans are not modelled.
// https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_Scan.html
func scan(s *state, body []byte) (any, error) {
	var in scanIn
	if err := decodeDDB("Scan", body, append([]string{"TableName", "Limit", "ExclusiveStartKey", "ConsistentRead", "Select"}, ddbIgnored...), &in); err != nil {
		return nil, err
	}
	t, err := s.findTable(in.TableName)
	if err != nil {
		return nil, err
	}
	limit := -1
	if in.Limit != nil {
		if *in.Limit < 1 {
			return nil, badRequest(CodeDDBValidation, "1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1", *in.Limit)
		}
		limit = int(*in.Limit)
	}
	if in.Select != "" && in.Select != "ALL_ATTRIBUTES" && in.Select != "COUNT" {
		return nil, badRequest(CodeDDBValidation, "awssim does not model Select %s in Scan (it models ALL_ATTRIBUTES, COUNT)", in.Select)
	}
	cursor := ""
	if in.ExclusiveStartKey != nil {
		if cursor, err = t.keyValue(in.ExclusiveStartKey, true); err != nil {
			return nil, badRequest(CodeDDBValidation, "The provided starting key is invalid: %s", err.(*apiError).message)
		}
	}
	out := &scanOut{}
	var items []ddbItem
	size, last := 0, ""
	full := func() bool { return out.ScannedCount == limit || size >= ddbMaxPageBytes }
	for _, k := range t.items.from(cursor) {
		if full() {
			break
		}
		item, _ := t.items.get(k)
		size += itemSize(item)
		out.ScannedCount++
		last = k
		items = append(items, item)
	}
	if out.ScannedCount > 0 && full() {
		out.LastEvaluatedKey = t.keyItem(last)
	}
	out.Count = out.ScannedCount
	if in.Select != "COUNT" {
		out.Items = append([]ddbItem{}, items...)
	}
	return out, nil
}

func (t *table) keyItem(k string) ddbItem {
	v, _ := json.Marshal(map[string]string{"S": k})
	return ddbItem{t.hashKey: v}
}

// AddTable creates a DynamoDB table whose hash key hashKey is a string
// (there is no CreateTable: tables are part of the world a test builds).
func (a *Account) AddTable(name, hashKey string) error {
	if name == "" || hashKey == "" {
		return fmt.Errorf("awssim: a table needs a name and a hash key")
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.st.tables[name]; ok {
		return fmt.Errorf("awssim: table %s exists", name)
	}
	a.st.tables[name] = &table{name: name, hashKey: hashKey, items: newOrdered[ddbItem]()}
	return nil
}

// Items returns a table's items in key order, each attribute as the JSON
// of its DynamoDB AttributeValue (e.g. {"S":"x"}); nil for a table that
// does not exist.
func (a *Account) Items(tableName string) []map[string]json.RawMessage {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.st.tables[tableName]
	if !ok {
		return nil
	}
	out := []map[string]json.RawMessage{}
	for _, it := range t.items.values() {
		out = append(out, maps.Clone(map[string]json.RawMessage(it)))
	}
	return out
}

// ItemKeys returns the hash key values of a table's items, in order.
func (a *Account) ItemKeys(tableName string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	t, ok := a.st.tables[tableName]
	if !ok {
		return nil
	}
	return slices.Clone(t.items.keys)
}
